//! Networking on the real kernel, with iproute2 and iputils as the independent oracle.
//!
//! Most scripts first `unshare(["net"])`, so the shell's own namespace is a fresh one and
//! the host's links and routes are never touched. A script that must be inspected while it
//! runs prints `KEY=VALUE` lines and `READY`, then blocks reading its stdin; the test looks
//! at its namespaces with `nsenter --net=/proc/PID/fd/N` (a namespace held only by a handle
//! is an open fd of the ctrsh process), then closes stdin to let it finish.
mod common;
use common::*;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

const HOLD: &str = "\nprint(\"READY\");\nread_file(\"/dev/stdin\");\n";

/// A ctrsh script stopped at `READY`, its reported variables, and its namespaces.
struct Held {
    child: Child,
    out: BufReader<ChildStdout>,
    vars: HashMap<String, String>,
    lines: Vec<String>,
}

impl Held {
    /// Run `before` + wait-for-stdin + `after`.
    fn start(before: &str, after: &str) -> Held {
        let code = format!("{before}{HOLD}{after}");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
            .arg("-e")
            .arg(&code)
            .env_remove("CTRSH_PATH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ctrsh");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut vars = HashMap::new();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                let _ = child.wait();
                panic!(
                    "ctrsh ended before READY\n--- code\n{code}\n--- stdout\n{}\n--- stderr\n{err}",
                    lines.join("\n")
                );
            }
            let line = line.trim_end().to_string();
            if line == "READY" {
                break;
            }
            if let Some((k, v)) = line.split_once('=') {
                vars.insert(k.to_string(), v.to_string());
            }
            lines.push(line);
        }
        Held {
            child,
            out,
            vars,
            lines,
        }
    }

    fn var(&self, k: &str) -> &str {
        self.vars
            .get(k)
            .unwrap_or_else(|| panic!("script did not report {k}: {:?}", self.lines))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A path nsenter can use for the network namespace whose inode the script reported
    /// as `key`.
    fn netns(&self, key: &str) -> String {
        let inode = self.var(key).to_string();
        netns_path(self.pid(), &inode)
    }

    /// Let the script go on; its remaining stdout, stderr and success.
    fn finish(mut self) -> (String, String, bool) {
        drop(self.child.stdin.take());
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let ok = self.child.wait().unwrap().success();
        (rest, err, ok)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// /proc/PID/ns/net or /proc/PID/fd/N, whichever is the namespace with `inode`.
fn netns_path(pid: u32, inode: &str) -> String {
    let want = format!("net:[{inode}]");
    let own = format!("/proc/{pid}/ns/net");
    if std::fs::read_link(&own).is_ok_and(|l| l.to_string_lossy() == want) {
        return own;
    }
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == want) {
            return e.path().display().to_string();
        }
    }
    panic!("no fd of {pid} holds {want}");
}

/// Run `args` inside the network namespace at `path`.
fn in_net(path: &str, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net={path}"))
        .args(args)
        .output()
        .expect("nsenter")
}

fn in_net_ok(path: &str, args: &[&str]) -> String {
    let o = in_net(path, args);
    assert!(
        o.status.success(),
        "{args:?} in {path} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ping(path: &str, addr: &str) -> bool {
    in_net(path, &["ping", "-c", "1", "-W", "3", "-q", addr])
        .status
        .success()
}

/// `ip -o link` as (index, name, up, mtu, mac) rows.
fn ip_links(path: &str) -> BTreeSet<(u32, String, bool, u32, String)> {
    in_net_ok(path, &["ip", "-o", "link"])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let index = f[0].trim_end_matches(':').parse().unwrap();
            let name = f[1].trim_end_matches(':');
            let name = name.split('@').next().unwrap().to_string();
            let up = f[2].trim_matches(['<', '>']).split(',').any(|x| x == "UP");
            let mtu = f[f.iter().position(|x| *x == "mtu").unwrap() + 1]
                .parse()
                .unwrap();
            let mac = f
                .iter()
                .position(|x| x.starts_with("link/"))
                .map(|i| f[i + 1].to_string())
                .unwrap_or_default();
            (index, name, up, mtu, mac)
        })
        .collect()
}

/// `ip -o addr` as (ifname, cidr) rows.
fn ip_addrs(path: &str) -> BTreeSet<(String, String)> {
    in_net_ok(path, &["ip", "-o", "addr"])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_string(), f[3].to_string())
        })
        .collect()
}

/// `ip route` / `ip -6 route` (main table) as (dst, via, dev) rows.
fn ip_routes(path: &str, v6: bool) -> BTreeSet<(String, String, String)> {
    let args: &[&str] = if v6 {
        &["ip", "-6", "route"]
    } else {
        &["ip", "route"]
    };
    in_net_ok(path, args)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let after = |k: &str| {
                f.iter()
                    .position(|x| *x == k)
                    .map(|i| f[i + 1].to_string())
                    .unwrap_or_default()
            };
            (f[0].to_string(), after("via"), after("dev"))
        })
        .collect()
}

/// Links, addresses, IPv4 routes and IPv6 routes of one namespace.
type Seen = (
    BTreeSet<(u32, String, bool, u32, String)>,
    BTreeSet<(String, String)>,
    BTreeSet<(String, String, String)>,
    BTreeSet<(String, String, String)>,
);

/// What the script printed with the REPORT snippet for namespace `tag`.
fn reported(h: &Held, tag: &str) -> Seen {
    let mut links = BTreeSet::new();
    let mut addrs = BTreeSet::new();
    let mut r4 = BTreeSet::new();
    let mut r6 = BTreeSet::new();
    for l in &h.lines {
        let f: Vec<&str> = l.split(' ').collect();
        if f.len() < 2 || f[1] != tag {
            continue;
        }
        match f[0] {
            "LINK" => {
                links.insert((
                    f[2].parse().unwrap(),
                    f[3].to_string(),
                    f[4] == "true",
                    f[5].parse().unwrap(),
                    f[6].to_string(),
                ));
            }
            "ADDR" => {
                addrs.insert((f[2].to_string(), f[3].to_string()));
            }
            "ROUTE4" | "ROUTE6" => {
                let none = |s: &str| {
                    if s == "()" {
                        String::new()
                    } else {
                        s.to_string()
                    }
                };
                let row = (f[2].to_string(), none(f[3]), none(f[4]));
                if f[0] == "ROUTE4" {
                    r4.insert(row);
                } else {
                    r6.insert(row);
                }
            }
            _ => {}
        }
    }
    (links, addrs, r4, r6)
}

/// A script function printing links, addresses and routes of `ns` under `tag`.
const REPORT: &str = r#"
fn report(tag, ns) {
    for l in links(#{ ns: ns }) {
        print(`LINK ${tag} ${l.index} ${l.name} ${l.up} ${l.mtu} ${l.mac}`);
        for a in l.addrs() { print(`ADDR ${tag} ${l.name} ${a}`); }
    }
    for r in routes(#{ ns: ns, family: "inet" }) { print(`ROUTE4 ${tag} ${r.dst} ${r.via} ${r.dev}`); }
    for r in routes(#{ ns: ns, family: "inet6" }) { print(`ROUTE6 ${tag} ${r.dst} ${r.via} ${r.dev}`); }
}
"#;

#[test]
fn veth_pair_pings_over_ipv4_and_ipv6_and_agrees_with_iproute2() {
    if !need_root() {
        return;
    }
    let (a, b) = (unique("va"), unique("vb"));
    let h = Held::start(
        &format!(
            r#"{REPORT}
            unshare(["net"]);
            let na = ns_of(pid(), "net");
            let nb = netns_new();
            let ends = veth("{a}", "{b}", #{{ b_ns: nb, mtu: 1400 }});
            ends[0].add_addr("10.77.0.1/24");
            ends[1].add_addr("10.77.0.2/24");
            ends[0].add_addr("fd77::1/64", #{{ nodad: true }});
            ends[1].add_addr("fd77::2/64", #{{ nodad: true }});
            for e in ends {{ e.set_up(); }}
            link("lo").set_up();
            link("lo", #{{ ns: nb }}).set_up();
            route_add(#{{ dst: "10.78.0.0/16", via: "10.77.0.2" }});
            route_add(#{{ dst: "fd78::/48", via: "fd77::2", metric: 7 }});
            print(`A=${{na.inode}}`);
            print(`B=${{nb.inode}}`);
            print(`KIND=${{ends[0].kind}} NS_B=${{ends[1].ns.inode}}`);
            report("A", na);
            report("B", nb);"#
        ),
        "",
    );
    let (pa, pb) = (h.netns("A"), h.netns("B"));
    assert_eq!(h.var("KIND"), format!("veth NS_B={}", h.var("B")));
    // Both directions, both families: ping is iputils, run inside each namespace.
    for (from, to) in [
        (&pa, "10.77.0.2"),
        (&pb, "10.77.0.1"),
        (&pa, "fd77::2"),
        (&pb, "fd77::1"),
    ] {
        assert!(ping(from, to), "ping {to} from {from}");
    }
    // iproute2 agrees with links(), .addrs() and routes().
    for (tag, path) in [("A", &pa), ("B", &pb)] {
        let (links, addrs, r4, r6) = reported(&h, tag);
        assert_eq!(links, ip_links(path), "links of {tag}");
        let ip_a = ip_addrs(path);
        // Link-local IPv6 addresses appear when a link comes up; compare the rest exactly
        // and require that every address ctrsh reported is one iproute2 shows.
        let stable = |s: &BTreeSet<(String, String)>| -> BTreeSet<(String, String)> {
            s.iter()
                .filter(|(_, c)| !c.starts_with("fe80:"))
                .cloned()
                .collect()
        };
        assert_eq!(stable(&addrs), stable(&ip_a), "addrs of {tag}");
        assert!(addrs.is_subset(&ip_a), "{addrs:?} vs {ip_a:?}");
        assert_eq!(r4, ip_routes(path, false), "IPv4 routes of {tag}");
        assert_eq!(r6, ip_routes(path, true), "IPv6 routes of {tag}");
    }
    let ip_a = in_net_ok(&pa, &["ip", "-o", "link", "show", &a]);
    assert!(ip_a.contains("mtu 1400"), "{ip_a}");
    assert!(in_net_ok(&pa, &["ip", "route"]).contains("10.78.0.0/16 via 10.77.0.2"));
    let (_, err, ok) = h.finish();
    assert!(ok, "{err}");
}

#[test]
fn router_namespace_with_forwarding_joins_two_subnets() {
    if !need_root() {
        return;
    }
    let h = Held::start(
        &format!(
            r#"unshare(["net"]);
            let h1 = ns_of(pid(), "net");
            let r = netns_new();
            let h2 = netns_new();
            let before = sysctl("net.ipv4.ip_forward", #{{ ns: r }});
            sysctl("net.ipv4.ip_forward", "1", #{{ ns: r }});
            sysctl("net.ipv6.conf.all.forwarding", 1, #{{ ns: r }});
            print(`FWD=${{before}}->${{sysctl("net.ipv4.ip_forward", #{{ ns: r }})}} here=${{sysctl("net.ipv4.ip_forward")}}`);
            let a = veth("{a}", "{ra}", #{{ b_ns: r }});
            let b = veth("{rb}", "{b}", #{{ a_ns: r, b_ns: h2 }});
            a[0].add_addr("10.81.1.2/24"); a[1].add_addr("10.81.1.1/24");
            b[0].add_addr("10.81.2.1/24"); b[1].add_addr("10.81.2.2/24");
            a[0].add_addr("fd81:1::2/64", #{{ nodad: true }}); a[1].add_addr("fd81:1::1/64", #{{ nodad: true }});
            b[0].add_addr("fd81:2::1/64", #{{ nodad: true }}); b[1].add_addr("fd81:2::2/64", #{{ nodad: true }});
            for l in [a[0], a[1], b[0], b[1]] {{ l.set_up(); }}
            route_add(#{{ dst: "default", via: "10.81.1.1" }});
            route_add(#{{ dst: "10.81.1.0/24", via: "10.81.2.1", ns: h2 }});
            route_add(#{{ dst: "default", via: "fd81:1::1" }});
            route_add(#{{ dst: "default", via: "fd81:2::1", ns: h2 }});
            print(`H1=${{h1.inode}}`); print(`R=${{r.inode}}`); print(`H2=${{h2.inode}}`);"#,
            a = unique("ha"),
            ra = unique("ra"),
            rb = unique("rb"),
            b = unique("hb"),
        ),
        "",
    );
    assert_eq!(h.var("FWD"), "0->1 here=0");
    let (p1, pr, p2) = (h.netns("H1"), h.netns("R"), h.netns("H2"));
    assert_eq!(
        in_net_ok(&pr, &["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "1"
    );
    assert_eq!(
        in_net_ok(&p1, &["cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
        "0"
    );
    assert!(ping(&p1, "10.81.2.2"), "h1 -> h2 through the router");
    assert!(ping(&p2, "10.81.1.2"), "h2 -> h1 through the router");
    assert!(ping(&p1, "fd81:2::2"), "h1 -> h2 over IPv6");
    let (_, err, ok) = h.finish();
    assert!(ok, "{err}");
}

#[test]
fn bridge_with_three_ports_every_pair_pings() {
    if !need_root() {
        return;
    }
    let br = unique("br");
    let h = Held::start(
        &format!(
            r#"unshare(["net"]);
            let sw = ns_of(pid(), "net");
            let br = bridge("{br}");
            br.set_up();
            let hosts = [];
            for i in 1..=3 {{
                let n = netns_new();
                let ends = veth(`{br}p${{i}}`, "eth0", #{{ b_ns: n }});
                ends[0].set_master(br);
                ends[0].set_up();
                ends[1].add_addr(`10.82.0.${{i}}/24`);
                ends[1].set_up();
                print(`H${{i}}=${{n.inode}}`);
                hosts.push(n);
            }}
            print(`KIND=${{br.kind}}`);"#
        ),
        "",
    );
    assert_eq!(h.var("KIND"), "bridge");
    let sw = format!("/proc/{}/ns/net", h.pid());
    let ports = in_net_ok(&sw, &["ip", "-o", "link", "show", "master", &br]);
    assert_eq!(ports.lines().count(), 3, "{ports}");
    for i in 1..=3 {
        for j in 1..=3 {
            if i != j {
                let from = h.netns(&format!("H{i}"));
                assert!(ping(&from, &format!("10.82.0.{j}")), "h{i} -> h{j}");
            }
        }
    }
    let (_, err, ok) = h.finish();
    assert!(ok, "{err}");
}

#[test]
fn vxlan_between_two_namespaces_carries_a_ping() {
    if !need_root() {
        return;
    }
    let h = Held::start(
        r#"unshare(["net"]);
            let a = ns_of(pid(), "net");
            let b = netns_new();
            // The underlay: two "hosts" joined by a veth.
            let u = veth("under0", "under1", #{ b_ns: b });
            u[0].add_addr("192.168.83.1/24"); u[1].add_addr("192.168.83.2/24");
            u[0].set_up(); u[1].set_up();
            let va = vxlan("vx0", #{ vni: 83, local: "192.168.83.1", remote: "192.168.83.2", dev: u[0] });
            let vb = vxlan("vx0", #{ vni: 83, local: "192.168.83.2", remote: "192.168.83.1", dev: "under1", ns: b, port: 4789 });
            va.add_addr("10.83.0.1/24"); vb.add_addr("10.83.0.2/24");
            va.set_up(); vb.set_up();
            print(`KIND=${va.kind}`);
            print(`A=${a.inode}`); print(`B=${b.inode}`);"#,
        "",
    );
    assert_eq!(h.var("KIND"), "vxlan");
    let (pa, pb) = (h.netns("A"), h.netns("B"));
    let d = in_net_ok(&pa, &["ip", "-d", "-o", "link", "show", "vx0"]);
    assert!(
        d.contains("vxlan id 83")
            && d.contains("remote 192.168.83.2")
            && d.contains("dstport 4789"),
        "{d}"
    );
    assert!(ping(&pa, "10.83.0.2"), "over the vxlan a -> b");
    assert!(ping(&pb, "10.83.0.1"), "over the vxlan b -> a");
    let (_, err, ok) = h.finish();
    assert!(ok, "{err}");
}

#[test]
fn macvlan_and_bridge_kinds_match_iproute2() {
    if !need_root() {
        return;
    }
    let h = Held::start(
        r#"unshare(["net"]);
            let other = netns_new();
            let up = veth("mvup0", "mvup1")[0];
            let m1 = macvlan("mv1", up, #{ mode: "bridge", mac: "02:00:00:00:83:01" });
            let m2 = macvlan("mv2", "mvup0", #{ mode: "private", ns: other });
            let br = bridge("brk", #{ mtu: 1400 });
            print(`M1=${m1.kind} ${m1.mac} ${m1.ns.inode == ns().net}`);
            print(`M2=${m2.kind} ${m2.ns.inode == other.inode}`);
            print(`O=${other.inode}`);
            print(`SHOW=${m1}`);"#,
        "",
    );
    assert_eq!(h.var("M1"), "macvlan 02:00:00:00:83:01 true");
    assert_eq!(h.var("M2"), "macvlan true");
    assert!(h.var("SHOW").starts_with("Link(mv1 #"), "{}", h.var("SHOW"));
    let here = format!("/proc/{}/ns/net", h.pid());
    let d = in_net_ok(&here, &["ip", "-d", "-o", "link", "show", "mv1"]);
    assert!(d.contains("macvlan mode bridge"), "{d}");
    let d = in_net_ok(&h.netns("O"), &["ip", "-d", "-o", "link", "show", "mv2"]);
    assert!(d.contains("macvlan mode private"), "{d}");
    let d = in_net_ok(&here, &["ip", "-d", "-o", "link", "show", "brk"]);
    assert!(d.contains("mtu 1400") && d.contains("bridge"), "{d}");
    let (_, err, ok) = h.finish();
    assert!(ok, "{err}");
}

#[test]
fn link_changes_show_in_iproute2_and_the_handle_follows_a_move() {
    if !need_root() {
        return;
    }
    let h = Held::start(
        r#"unshare(["net"]);
            let other = netns_new();
            let ends = veth("chg0", "chg1");
            let a = ends[0]; let b = ends[1];
            a.set_mtu(1300); a.set_mac("02:00:00:00:84:01"); a.set_up();
            b.rename("moved1");
            b.move_to(other);
            b.add_addr("10.84.0.2/24");
            b.set_up();
            print(`B=${b.name} ${b.ns.inode == other.inode} ${b.up} ${b.addrs()}`);
            print(`A=${a.mtu} ${a.mac} ${a.up}`);
            a.set_down();
            print(`DOWN=${a.up}`);
            print(`O=${other.inode}`);"#,
        "",
    );
    assert_eq!(h.var("A"), "1300 02:00:00:00:84:01 true");
    assert_eq!(h.var("DOWN"), "false");
    assert!(
        h.var("B").starts_with("moved1 true true [\"10.84.0.2/24\""),
        "{}",
        h.var("B")
    );
    let o = h.netns("O");
    let s = in_net_ok(&o, &["ip", "-o", "addr", "show", "moved1"]);
    assert!(s.contains("10.84.0.2/24"), "{s}");
    let here = format!("/proc/{}/ns/net", h.pid());
    assert!(!in_net_ok(&here, &["ip", "-o", "link"]).contains("moved1"));
    let (_, err, ok) = h.finish();
    assert!(ok, "{err}");
}

#[test]
fn socket_in_gives_a_server_a_socket_that_accepts_from_inside_the_namespace() {
    if !need_root() {
        return;
    }
    let out = std::env::temp_dir().join(format!("ctrsh-net-{}.out", unique("s")));
    let code = format!(
        r#"let n = netns_new();
        link("lo", #{{ ns: n }}).set_up();
        let s = socket_in(n, #{{ family: "inet", type: "stream", bind: "127.0.0.1:7081", listen: 8 }});
        print(s);
        // The server runs in the shell's namespace; only its socket lives in n.
        let srv = spawn(#{{ cmd: ["python3", "-c", "import socket; s = socket.socket(fileno=3); c, a = s.accept(); print(c.recv(10).decode())"],
                           fds: #{{ "3": s }}, stdout: "{out}" }});
        let code = run(#{{ cmd: ["python3", "-c", "import socket; c = socket.create_connection(('127.0.0.1', 7081)); c.sendall(b'hello')"],
                          join: #{{ net: n }} }});
        print(`client=${{code}} server=${{srv.wait()}}`);
        // From the shell's own namespace nothing listens there.
        let here = run(#{{ cmd: ["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 7081))"], stderr: "null" }});
        print(`here=${{here != 0}}`);"#,
        out = out.display()
    );
    let stdout = eval_ok(&format!(
        "unshare([\"net\"]); link(\"lo\").set_up();\n{code}"
    ));
    assert!(stdout.contains("client=0 server=0"), "{stdout}");
    assert!(stdout.contains("here=true"), "{stdout}");
    assert!(
        stdout.contains("socket inet stream 127.0.0.1:7081 listening in net:["),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().trim(), "hello");
    let _ = std::fs::remove_file(&out);
}

#[test]
fn socket_in_unix_and_udp_and_bad_options() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"let n = netns_new();
        link("lo", #{ ns: n }).set_up();
        let u = socket_in(n, #{ family: "unix", type: "stream", bind: "@ctrsh-test-abstract", listen: true });
        let d = socket_in(n, #{ family: "inet6", type: "dgram", bind: "[::1]:0" });
        print(u); print(d);
        for bad in [
            #{ family: "inet", bind: "10.0.0.1" },
            #{ family: "inte" },
            #{ type: "dgram", bind: ":0", listen: 4 },
            #{ family: "inet", bind: "[::1]:80" },
            #{ family: "inet", bind: "10.99.0.1:80" },
            #{ bnid: ":80" },
        ] {
            try { socket_in(n, bad); print("NO ERROR"); } catch (e) { print(`ERR ${e.message}`); }
        }"#,
    );
    assert!(
        out.contains("socket unix stream @ctrsh-test-abstract listening"),
        "{out}"
    );
    assert!(!out.contains("NO ERROR"), "{out}");
    assert!(
        out.contains("socket_in(bind): \"10.0.0.1\" is not address:port"),
        "{out}"
    );
    assert!(out.contains("unknown family \"inte\""), "{out}");
    assert!(out.contains("a dgram socket cannot listen"), "{out}");
    assert!(out.contains("not an address of family inet"), "{out}");
    assert!(out.contains("EADDRNOTAVAIL"), "{out}");
    assert!(out.contains("unknown option \"bnid\""), "{out}");
}

#[test]
fn open_in_resolves_inside_the_target_root() {
    if !need_root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("ctrsh-openin-{}", unique("o")));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/hostname"), "inside\n").unwrap();
    // A hostile link: in the target's root it must mean its own /etc, never the host's.
    std::os::unix::fs::symlink("/etc/hostname", dir.join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../etc/hostname", dir.join("evil2")).unwrap();
    let code = format!(
        r#"let p = fork(|| {{ chroot("{d}"); sleep(30); }});
        sleep(0.2);
        for path in ["/etc/hostname", "evil", "evil2"] {{
            let f = open_in(p, path);
            let text = read_file(`/proc/self/fd/${{f.fd}}`);
            text.trim();
            print(`${{path}}=${{text}}`);
        }}
        let w = open_in(p, "/etc/new", #{{ write: true, create: true, mode: 0o600 }});
        print(w);
        try {{ open_in(p, "/nope"); }} catch (e) {{ print(`MISSING ${{e.errno_name}}`); }}
        try {{ open_in(p, "/etc/x", #{{ create: true }}); }} catch (e) {{ print(`BAD ${{e.message}}`); }}
        p.kill(); p.wait();
        try {{ open_in(p, "/etc/hostname"); }} catch (e) {{ print(`DEAD ${{e.errno_name}}`); }}"#,
        d = dir.display()
    );
    let out = eval_ok(&code);
    for want in [
        "/etc/hostname=inside",
        "evil=inside",
        "evil2=inside",
        "MISSING ENOENT",
        "create and truncate need write",
        "DEAD ESRCH",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
    let meta = std::fs::metadata(dir.join("etc/new")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A netns made by the test with `ip netns add`, removed on drop: it outlives ctrsh, so
/// what ctrsh leaves in it is visible afterwards.
struct Named(String);

impl Named {
    fn new() -> Named {
        let name = unique("ctnet");
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        Named(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn what_a_recipe_creates_in_a_lasting_namespace_is_removed_at_the_end_unless_kept() {
    if !need_root() {
        return;
    }
    let n = Named::new();
    let out = eval_ok(&format!(
        r#"let n = ns_open("{p}", "net");
        let lo = link("lo", #{{ ns: n }});
        lo.set_up();
        lo.add_addr("10.85.0.1/32");
        lo.add_addr("10.85.0.2/32", #{{ keep: true }});
        let tmp = veth("tmp0", "tmp1", #{{ a_ns: n, b_ns: netns_new() }});
        let kept = veth("kept0", "kept1", #{{ a_ns: n, b_ns: n, keep: true }});
        let br = bridge("tmpbr", #{{ ns: n }});
        kept[0].add_addr("10.85.1.1/24"); kept[0].set_up();
        route_add(#{{ dst: "10.86.0.0/16", via: "10.85.1.2", ns: n }});
        route_add(#{{ dst: "10.87.0.0/16", via: "10.85.1.2", ns: n, keep: true }});
        for r in resources() {{ print(`OWNED ${{r}}`); }}"#,
        p = n.path()
    ));
    // One registration per veth (not one per end), none for kept things.
    let owned: Vec<&str> = out.lines().filter(|l| l.starts_with("OWNED")).collect();
    assert_eq!(
        owned.iter().filter(|l| l.contains("veth tmp0")).count(),
        1,
        "{out}"
    );
    assert!(!out.contains("kept0"), "{out}");
    assert!(
        owned
            .iter()
            .any(|l| l.contains("address 10.85.0.1/32 on lo")),
        "{out}"
    );
    assert!(owned.iter().any(|l| l.contains("bridge tmpbr")), "{out}");
    assert!(
        owned.iter().any(|l| l.contains("route 10.86.0.0/16")),
        "{out}"
    );
    let links = n.ip(&["-o", "link"]);
    assert!(
        !links.contains("tmp0") && !links.contains("tmpbr"),
        "{links}"
    );
    assert!(
        links.contains("kept0") && links.contains("kept1"),
        "{links}"
    );
    let addrs = n.ip(&["-o", "addr"]);
    assert!(
        !addrs.contains("10.85.0.1/32") && addrs.contains("10.85.0.2/32"),
        "{addrs}"
    );
    let routes = n.ip(&["route"]);
    assert!(
        !routes.contains("10.86.0.0") && routes.contains("10.87.0.0/16"),
        "{routes}"
    );
}

#[test]
fn explicit_delete_and_route_del_then_the_end_is_quiet() {
    if !need_root() {
        return;
    }
    let n = Named::new();
    let out = ctrsh()
        .arg("-e")
        .arg(format!(
            r#"let n = ns_open("{p}", "net");
            let e = veth("del0", "del1", #{{ a_ns: n }});
            e[0].add_addr("10.88.5.1/24"); e[0].set_up();
            route_add(#{{ dst: "10.89.0.0/16", via: "10.88.5.2", ns: n }});
            route_del(#{{ dst: "10.89.0.0/16", ns: n }});
            e[1].delete();
            e[0].delete();   // gone with its peer: not an error
            print(e[0]);
            print(resources().len());"#,
            p = n.path()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("deleted"), "{stdout}");
    assert_eq!(stdout.lines().last(), Some("0"), "{stdout}");
    assert!(stderr.is_empty(), "teardown complained: {stderr}");
    assert!(!n.ip(&["-o", "link"]).contains("del0"));
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_nothing_is_left_half_made() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"unshare(["net"]);
        let other = netns_new();
        let x = veth("taken0", "taken1", #{ a_ns: other, b_ns: other });
        let dead = fork(|| { exit(0); });
        dead.wait();
        let l = veth("ok0", "ok1")[0];
        let tries = [
            || veth("a-name-of-16-chr", "b"),
            || veth("", "b"),
            || veth("a/b", "b"),
            || veth("a b", "b"),
            || veth("a:1", "b"),
            || veth("np%d", "b"),
            || l.add_addr("10.0.0.1/33"),
            || l.add_addr("fe80::zz/64"),
            || l.add_addr("10.0.0.1"),
            || l.set_mac("01:00:00:00:00:01"),
            || l.set_mac("zz:00:00:00:00:01"),
            || link("missing0"),
            || veth("ok0", "fresh1"),
            || veth("fresh0", "taken1", #{ b_ns: other }),
            || veth("fresh2", "fresh3", #{ b_ns: dead }),
            || veth("fresh4", "fresh5", #{ b_ns: 999999999 }),
            || veth("fresh6", "fresh7", #{ b_nss: other }),
            || route_add(#{ dst: "10.1.2.3/16", via: "10.0.0.1" }),
            || route_add(#{ dst: "10.1.0.0/16", via: "fd00::1" }),
            || route_add(#{ dst: "10.1.0.0/16" }),
            || route_add(#{ dst: "10.1.0.0/16", via: "10.200.0.1" }),
            || sysctl("net/ipv4/ip_forward"),
            || sysctl("net..ipv4"),
            || sysctl("net.ipv4.no_such_key"),
            || sysctl("kernel.hostname", #{ ns: other }),
            || sysctl("kernel.hostname", sysctl("kernel.hostname"), #{ ns: other }),
            || sysctl("net.ipv4.ip_forward", "abc", #{ ns: other }),
            || vxlan("vx9", #{ remote: "10.0.0.2" }),
            || vxlan("vx9", #{ vni: 5, group: "10.0.0.2" }),
            || bridge("br9", #{ mtu: 10 }),
            || macvlan("mv9", "missing1"),
            || l.move_to(dead),
            || in_ns([other, netns_new()], || 1),
        ];
        for t in tries {
            try { t.call(); print("NO ERROR"); }
            catch (e) { print(`ERR ${e.message} | ${e.errno_name} | ${e.name}`); }
        }
        print(`LEFT ${links().map(|l| l.name)}`);
        print(`LEFT_OTHER ${links(#{ ns: other }).map(|l| l.name)}`);"#,
    );
    let errs: Vec<&str> = out.lines().filter(|l| l.starts_with("ERR ")).collect();
    assert!(!out.contains("NO ERROR"), "{out}");
    assert_eq!(errs.len(), 33, "{out}");
    let want = [
        "veth(name_a): \"a-name-of-16-chr\" is 16 bytes; interface names are at most 15",
        "veth(name_a): an interface name cannot be empty",
        "veth(name_a): \"a/b\" contains '/'",
        "veth(name_a): \"a b\" contains ' '",
        "veth(name_a): \"a:1\" contains ':'",
        "veth(name_a): \"np%d\" contains '%'",
        "add_addr(cidr): prefix length in \"10.0.0.1/33\" must be 0 to 32",
        "add_addr(cidr): \"fe80::zz\" in \"fe80::zz/64\" is not an IP address",
        "add_addr(cidr): \"10.0.0.1\" is not address/prefix-length",
        "set_mac(mac): \"01:00:00:00:00:01\" is a multicast address",
        "set_mac(mac): \"zz:00:00:00:00:01\" is not a MAC address",
        "link(missing0): no interface \"missing0\" in net:[",
        "veth(ok0): an interface named ok0 exists already in net:[",
        "veth(taken1): an interface named taken1 exists already in net:[",
        "has exited",
        "veth(b_ns): no process 999999999",
        "veth(b_nss): unknown option \"b_nss\"; did you mean b_ns",
        "route_add(dst): \"10.1.2.3/16\" has host bits set; the prefix is 10.1.0.0/16",
        "route_add(via): 10.1.0.0/16 is an IPv4 route but via fd00::1 is IPv6",
        "route_add(via): give a gateway (via) or an interface (dev)",
        "ENETUNREACH",
        "sysctl(key): \"net/ipv4/ip_forward\": write keys with dots",
        "sysctl(key): \"net..ipv4\": empty component",
        "sysctl(/proc/sys/net/ipv4/no_such_key, net.ipv4.no_such_key)",
        // Only net.* keys are a network namespace's: others would be the shell's (host's).
        "sysctl(key): \"kernel.hostname\" is not a network namespace key",
        "sysctl(key): \"kernel.hostname\" is not a network namespace key",
        "net.ipv4.ip_forward): writing \"abc\"",
        "vxlan(vni): the option \"vni\" is required",
        "vxlan(group): 10.0.0.2 is not a multicast address",
        "bridge(mtu): 10 is not an MTU",
        "macvlan(missing1)",
        "has exited",
        "in_ns(ns): two net namespaces given",
    ];
    for (i, w) in want.iter().enumerate() {
        assert!(
            errs[i].contains(w),
            "error {i}: want {w:?} in {:?}",
            errs[i]
        );
    }
    assert!(
        errs[12].contains("EEXIST") && errs[13].contains("EEXIST"),
        "{out}"
    );
    assert!(errs[11].contains("ENODEV"), "{out}");
    // The other namespace's inode is named in the EEXIST of its interface.
    // Nothing half-made: no fresh* interface anywhere, ok0/ok1 untouched.
    assert!(
        out.contains("LEFT [\"lo\", \"ok1\", \"ok0\"]")
            || out.contains("LEFT [\"lo\", \"ok0\", \"ok1\"]"),
        "{out}"
    );
    assert!(
        out.contains("LEFT_OTHER [\"lo\", \"taken1\", \"taken0\"]")
            || out.contains("LEFT_OTHER [\"lo\", \"taken0\", \"taken1\"]"),
        "{out}"
    );
}

#[test]
fn the_eexist_error_names_the_namespace_of_the_taken_name() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"let other = netns_new();
        veth("peer0", "dup1", #{ a_ns: other, b_ns: other });
        try { veth("new0", "dup1", #{ a_ns: netns_new(), b_ns: other }); }
        catch (e) { print(`${e.message}`); print(`OTHER=${other.inode} ERRNO=${e.errno_name} OP=${e.op}`); }"#,
    );
    let other = out
        .lines()
        .find_map(|l| l.strip_prefix("OTHER="))
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(
        out.contains(&format!(
            "an interface named dup1 exists already in net:[{other}]"
        )),
        "{out}"
    );
    assert!(out.contains("ERRNO=EEXIST OP=veth"), "{out}");
}

#[test]
fn a_topology_recipe_starts_no_process_but_the_pings_it_asks_for() {
    if !need_root() || Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: needs root and strace");
        return;
    }
    let log = std::env::temp_dir().join(format!("ctrsh-strace-{}.log", unique("st")));
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=execve", "-o"])
        .arg(&log)
        .arg(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(
            r#"import "net/topology" as topo;
            let t = topo::linear(4, #{ family: "dual" });
            let s = topo::star(3);
            print(sysctl("net.ipv4.ip_forward", #{ ns: t.hosts[1].ns }));
            let r = t.exec("h1", ["ping", "-c", "1", "-W", "3", t.addr("h4")]);
            print(`ping=${r.status}`);"#,
        )
        .env_remove("CTRSH_PATH")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ping=0"), "{stdout}");
    let trace = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let execs: Vec<&str> = trace.lines().filter(|l| l.contains("execve(")).collect();
    assert_eq!(
        execs.len(),
        2,
        "exactly ctrsh itself and the one ping: {trace}"
    );
    assert!(execs[0].contains("ctrsh"), "{trace}");
    assert!(execs[1].contains("ping"), "{trace}");
}

#[test]
fn topology_builders_reach_every_host() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"import "net/topology" as topo;
        for t in [topo::linear(4, #{ family: "dual" }), topo::star(4), topo::tree(2, 2), topo::ring(5, #{ family: "ipv6" }), topo::mesh(3)] {
            let res = t.pingall();
            print(`${t.kind} ${res.received}/${res.sent}`);
        }"#,
    );
    for want in [
        "linear 12/12",
        "star 12/12",
        "tree 42/42",
        "ring 20/20",
        "mesh 6/6",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

#[test]
fn link_printing_and_properties_in_a_fresh_namespace() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"let n = netns_new();
        let lo = link("lo", #{ ns: n });
        print(lo);
        lo.set_up();
        print(`${lo.name} ${lo.index} ${lo.kind} ${lo.mtu} ${lo.up} ${lo.addrs()}`);
        print(links(#{ ns: n }).len());
        print(routes(#{ ns: n, table: "local", family: "inet" }).map(|r| r.dst));"#,
    );
    assert!(
        out.contains("Link(lo #1 loopback down mtu 65536 in net:["),
        "{out}"
    );
    assert!(
        out.contains("lo 1 loopback 65536 true [\"127.0.0.1/8\", \"::1/128\"]"),
        "{out}"
    );
    assert!(out.contains("127.0.0.1"), "{out}");
}

#[test]
fn failures_inside_another_namespace_never_strand_the_shell() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"unshare(["net"]);
        let home = ns().net;
        let n = netns_new();
        link("lo", #{ ns: n }).set_up();
        try { sysctl("net.ipv4.no_such_key", "1", #{ ns: n }); } catch (e) { print(`sysctl ${e.errno_name}`); }
        try { sysctl("net.ipv4.ip_forward", "banana", #{ ns: n }); } catch (e) { print(`value ${e.errno_name}`); }
        try { socket_in(n, #{ bind: "10.1.1.1:1" }); } catch (e) { print(`bind ${e.errno_name}`); }
        try { veth("x0", "x1", #{ a_ns: n, b_ns: n }); veth("x0", "x2", #{ a_ns: n }); } catch (e) { print(`veth ${e.errno_name}`); }
        print(`home=${ns().net == home}`);"#,
    );
    for want in [
        "sysctl ENOENT",
        "value EINVAL",
        "bind EADDRNOTAVAIL",
        "veth EEXIST",
        "home=true",
    ] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

#[test]
fn the_repl_prints_links_readably_and_survives_errors() {
    if !need_root() {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"));
    cmd.env("XDG_STATE_HOME", state.path())
        .env("TERM", "xterm")
        .env_remove("CTRSH_PATH");
    let mut p = rexpect::session::spawn_command(cmd, Some(20_000)).expect("spawn ctrsh in a pty");
    p.exp_string("ctrsh> ").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut line = |text: &str, expect: &str| {
        p.send_line(text).unwrap();
        p.exp_string(expect)
            .unwrap_or_else(|e| panic!("after {text:?}: {e}"));
        p.exp_string("ctrsh> ").unwrap();
    };
    line("unshare([\"net\"]); \"moved\"", "=> \"moved\"");
    line("links()", "Link(lo #1 loopback down mtu 65536 in net:[");
    line("veth(\"a-name-much-too-long\", \"b\")", "at most 15");
    line("let e = veth(\"r0\", \"r1\"); e[0]", "Link(r0 #");
    line("e[0].set_up(); e[0].up", "true");
    p.send_line(":quit").unwrap();
    p.exp_eof().unwrap();
}

/// The network recipes under scripts/, run as a user runs them.
fn run_script(name: &str, args: &[&str]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name);
    let out = ctrsh().arg(&path).args(args).output().expect("run ctrsh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} failed ({:?})\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_network_scripts_run_and_lose_nothing() {
    if !need_root() {
        return;
    }
    let out = run_script("linear.rhai", &["5", "dual"]);
    assert!(out.contains("h1 -> h5") && out.contains(": ok"), "{out}");
    assert!(out.contains("0.0% dropped (20/20 received)"), "{out}");
    let out = run_script("star.rhai", &["4"]);
    assert!(out.contains("0.0% dropped (12/12 received)"), "{out}");
    let out = run_script("tree.rhai", &["2", "2"]);
    assert!(out.contains("0.0% dropped (42/42 received)"), "{out}");
    let out = run_script("router-nat.rhai", &[]);
    assert!(
        out.contains("a -> outside: ok") && out.contains("b -> outside: ok"),
        "{out}"
    );
    assert!(out.contains("sees the source as 203.0.113.2"), "{out}");
}

/// Open fds of the ctrsh running the script, then what it owns, after each way of letting
/// topologies go: every namespace of a dropped or torn-down topology is closed at once.
#[test]
fn dropped_and_torn_down_topologies_free_their_namespaces_at_once() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"import "net/topology" as topo;
        let fds = || list_dir("/proc/self/fd").len();
        // Warm up: the shell's own netns handle (sysctl) and the mountinfo watch (looked at
        // by resources()) stay open for good.
        topo::linear(3).teardown();
        resources();
        let base = fds.call();
        for i in 0..5 { let t = topo::linear(10); t.teardown(); }
        print(`teardown ${fds.call() - base} ${resources().len()}`);
        for i in 0..5 { let t = topo::star(10); }
        print(`dropped ${fds.call() - base} ${resources().len()}`);
        for i in 0..30 {
            let n = netns_new();
            let a = veth("a", "b", #{ a_ns: n })[0];
            a.set_up();
            route_add(#{ dst: "default", dev: a, ns: n });
        }
        print(`veth ${fds.call() - base} ${resources().len()}`);
        let kept = topo::linear(3);
        print(`held ${resources().len() > 0}`);"#,
    );
    for want in ["teardown 0 0", "dropped 0 0", "veth 0 0", "held true"] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
}

/// The reviewer's loop under a low fd limit: before, every namespace stayed open in the
/// recipe's cleanup records until the end, and round 4 failed with EMFILE.
#[test]
fn a_loop_of_topologies_runs_under_a_low_fd_limit() {
    if !need_root() {
        return;
    }
    let code = r#"import "net/topology" as topo;
        for i in 0..10 { let t = topo::linear(20); if i % 2 == 0 { t.teardown(); } }
        print(`done ${resources().len()}`);"#;
    let out = Command::new("sh")
        .args(["-c", "ulimit -n 150 && exec \"$0\" -e \"$1\""])
        .arg(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg(code)
        .env_remove("CTRSH_PATH")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.contains("done 0"), "{s}");
}

/// Resources in namespaces that outlive the shell are still removed at the end when the
/// script dropped every handle on them: the namespace is found again by its mount or by a
/// process in it.
#[test]
fn what_is_left_in_a_lasting_namespace_after_its_handles_are_dropped_is_removed_at_the_end() {
    if !need_root() {
        return;
    }
    let n = Named::new();
    let tag = unique("dh");
    let out = eval_ok(&format!(
        r#"let p = spawn(#{{ cmd: ["sleep", "30"], ns: ["net"] }});
        let pinned = || ns_open("{path}", "net");
        veth("{tag}a", "{tag}b", #{{ a_ns: pinned.call() }})[0].set_up();
        link("lo", #{{ ns: pinned.call() }}).add_addr("10.84.0.1/32");
        route_add(#{{ dst: "10.84.1.0/24", dev: "{tag}a", ns: pinned.call() }});
        veth("{tag}c", "{tag}d", #{{ a_ns: p }});
        print(`p ${{p.pid}}`);
        print(output(#{{ cmd: ["ip", "-o", "link"], join: #{{ net: p }} }}).stdout);
        print(resources().len());"#,
        path = n.path()
    ));
    assert!(out.contains(&format!("{tag}c")), "{out}");
    assert!(out.trim_end().ends_with('5'), "{out}");
    let links = n.ip(&["-o", "link"]);
    assert!(!links.contains(&tag), "{links}");
    let addrs = n.ip(&["-o", "addr"]);
    assert!(!addrs.contains("10.84.0.1"), "{addrs}");
    let routes = n.ip(&["route"]);
    assert!(!routes.contains("10.84.1.0"), "{routes}");
}
