//! The recipe library on the real kernel: topologies (pingall, link failures, teardown after
//! a normal end, an error and SIGINT), stdlib/ctr containers with each networking option,
//! and the seed recipes under scripts/ that go through them.
mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn script(name: &str) -> String {
    format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run_ok(name: &str, args: &[&str]) -> String {
    let out = ctrsh().arg(script(name)).args(args).output().unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({:?})\n{s}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

#[test]
fn linear_50_first_pings_last_and_pingall_loses_nothing() {
    if !need_root() {
        return;
    }
    let out = run_ok("linear.rhai", &["50"]);
    assert!(
        out.contains("built linear(50): 50 hosts, 49 links"),
        "{out}"
    );
    assert!(out.contains("h1 -> h50") && out.contains(": ok"), "{out}");
    assert!(out.contains("0.0% dropped (2450/2450 received)"), "{out}");
}

#[test]
fn tree_2_3_and_star_20_lose_nothing() {
    if !need_root() {
        return;
    }
    let out = run_ok("tree.rhai", &["2", "3"]);
    assert!(out.contains("0.0% dropped (156/156 received)"), "{out}");
    let out = run_ok("star.rhai", &["20"]);
    assert!(out.contains("0.0% dropped (380/380 received)"), "{out}");
}

#[test]
fn ring_and_mesh_lose_nothing() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        import "net/topology" as topo;
        let r = topo::ring(6, #{ family: "dual" });
        print(`ring ${r.pingall().loss}`);
        r.teardown();
        let m = topo::mesh(5);
        print(`mesh ${m.pingall().loss}`);
        "#,
    );
    assert!(out.contains("ring 0.0"), "{out}");
    assert!(out.contains("mesh 0.0"), "{out}");
}

#[test]
fn link_down_stops_traffic_and_link_up_restores_it() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        import "net/topology" as topo;
        let t = topo::linear(4, #{ family: "dual" });
        let ping = |dst| t.exec("h1", ["ping", "-c", "1", "-W", "1", dst]).status;
        print(`before ${ping.call(t.addr("h4"))}`);
        t.link_down("h2", "h3");
        print(`down ${ping.call(t.addr("h4"))} ${ping.call(t.addr("h2"))}`);
        t.link_up("h2", "h3");
        print(`up ${ping.call(t.addr("h4"))}`);
        print(`pingall ${t.pingall().loss}`);
        "#,
    );
    assert!(out.contains("before 0"), "{out}");
    // Across the broken link: lost; on the intact side: fine.
    assert!(out.contains("down 1 0"), "{out}");
    assert!(out.contains("up 0"), "{out}");
    assert!(out.contains("pingall 0.0"), "{out}");
}

#[test]
fn link_down_and_link_up_twice_lose_no_route() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        import "net/topology" as topo;
        let t = topo::linear(3);
        let count = || t.hosts.map(|h| routes(#{ ns: h.ns }).len());
        let before = count.call();
        t.link_down("h1", "h2");
        t.link_down("h1", "h2");
        t.link_up("h1", "h2");
        t.link_up("h1", "h2");
        print(`routes ${count.call() == before} ${before}`);
        print(`pingall ${t.pingall().loss}`);
        "#,
    );
    assert!(out.contains("routes true"), "{out}");
    assert!(out.contains("pingall 0.0"), "{out}");
}

/// Forwarding over IPv6 works right after a build: with duplicate address detection on,
/// each link-local address stayed tentative for 1-2 s and the first pings across a router
/// were lost (15% of a fresh linear(10)).
#[test]
fn ipv6_topologies_and_routers_forward_right_after_they_are_built() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        import "net/topology" as topo;
        import "net/router" as router;
        for i in 0..3 {
            print(`linear ${topo::linear(10, #{ family: "ipv6" }).pingall().loss}`);
            print(`tree ${topo::tree(3, 2, #{ family: "ipv6" }).pingall().loss}`);
            let r = router::create("r6");
            let a = netns_new();
            router::attach(r, a, #{ subnet6: "fd00:61::/64" });
            let b = router::attach(r, netns_new(), #{ subnet6: "fd00:62::/64" });
            let dst = b.host_addr6.split("/")[0];
            print(`router ${run(#{ cmd: ["ping", "-c", "1", "-W", "1", dst], join: #{ net: a }, stdout: "null" })}`);
        }
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["linear 0.0", "tree 0.0", "router 0"].repeat(3),
        "{out}"
    );
}

/// bridge::plug counts an explicit address as given out: before, the next plug got the same
/// address (host k + 2 of port k, whatever the ports' addresses were).
#[test]
fn bridge_plug_never_gives_out_an_address_in_use() {
    if !need_root() {
        return;
    }
    let tag = unique("bp");
    let out = eval_ok(&format!(
        r#"
        import "net/bridge" as bridge;
        let br = bridge::common("{tag}", #{{ subnet: "10.88.0.0/24", subnet6: "fd00:88::/64" }});
        let a = bridge::plug(br, netns_new(), #{{ addr: "10.88.0.3/24" }});
        let b = bridge::plug(br, netns_new());
        let c = bridge::plug(br, netns_new());
        print(`addrs ${{[a.addr, a.addr6, b.addr, b.addr6, c.addr, c.addr6]}}`);
        for o in [#{{ addr: "10.88.0.3/24" }}, #{{ addr6: "fd00:88::4/64" }}, #{{ addr: "10.88.0.1/24" }}] {{
            try {{ bridge::plug(br, netns_new(), o); print("accepted"); }} catch (e) {{ print(e.message); }}
        }}
        print(`ping ${{run(#{{ cmd: ["ping", "-c", "1", "-W", "1", "10.88.0.3"], join: #{{ net: b.link.ns }}, stdout: "null" }})}}`);
        print(`ports ${{links(#{{ ns: br.ns }}).len()}}`);
        "#
    ));
    assert!(
        out.contains(r#"addrs ["10.88.0.3/24", "fd00:88::3/64", "10.88.0.2/24", "fd00:88::2/64", "10.88.0.4/24", "fd00:88::4/64"]"#),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "bridge::plug(addr): 10.88.0.3/24 is taken (port {tag}-p1 of {tag} has host 3)"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "bridge::plug(addr6): fd00:88::4/64 is taken (port {tag}-p2 of {tag} has host 4)"
        )),
        "{out}"
    );
    assert!(
        out.contains("bridge::plug(addr): 10.88.0.1/24 is the bridge's own address"),
        "{out}"
    );
    assert!(!out.contains("accepted"), "{out}");
    assert!(out.contains("ping 0"), "{out}");
    // lo, the bridge and three ports: the refused plugs made nothing.
    assert!(out.contains("ports 5"), "{out}");
}

/// A router takes each subnet once: attached twice, both ports got host 1 and routing broke
/// with no error.
#[test]
fn router_attach_refuses_a_subnet_the_router_has() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        import "net/router" as router;
        let r = router::create("rt8");
        // (Kept in variables: a host namespace nobody holds dies, and its link with it.)
        let a = router::attach(r, netns_new(), #{ subnet: "10.1.0.0/24", subnet6: "fd00:1::/64" });
        let u = router::uplink(r, netns_new(), #{ subnet: "10.9.0.0/24" });
        for o in [#{ subnet: "10.1.0.0/24" }, #{ subnet: "10.1.0.0/16" }, #{ subnet6: "fd00:1::/64" },
                  #{ subnet: "10.9.0.128/25" }] {
            try { router::attach(r, netns_new(), o); print("accepted"); } catch (e) { print(e.message); }
        }
        try { router::uplink(r, netns_new(), #{ subnet: "10.1.0.0/24", peer_if: "up2" }); print("accepted"); } catch (e) { print(e.message); }
        let b = router::attach(r, netns_new(), #{ subnet: "10.2.0.0/24" });
        print(`links ${links(#{ ns: r.ns }).len()}`);
        "#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "router::attach(subnet): 10.1.0.0/24 is in use on router rt8 (10.1.0.1/24 on rt8-p0)",
            "router::attach(subnet): 10.1.0.0/16 is in use on router rt8 (10.1.0.1/24 on rt8-p0)",
            "router::attach(subnet6): fd00:1::/64 is in use on router rt8 (fd00:1::1/64 on rt8-p0)",
            "router::attach(subnet): 10.9.0.128/25 is in use on router rt8 (10.9.0.2/24 on rt8-up)",
            "router::uplink(subnet): 10.1.0.0/24 is in use on router rt8 (10.1.0.1/24 on rt8-p0)",
            // lo, p0, up and the new p1: the refused ones made nothing.
            "links 4",
        ],
        "{out}"
    );
}

/// Bad input to the stdlib modules is reported under the function and the argument, in
/// script terms: never a rhai error map, a Rust type name or an interpreter message.
#[test]
fn stdlib_errors_name_the_function_and_the_argument() {
    if !need_root() {
        return;
    }
    let cases = [
        (
            r#"topo::linear(3, #{ ipv4: "a.b.c.d/16" })"#,
            r#"linear(ipv4): "a.b.c.d/16" is not a CIDR"#,
        ),
        (
            r#"topo::linear(3, #{ ipv4: 5 })"#,
            r#"linear(ipv4): expected a CIDR like "10.0.0.0/24", got int"#,
        ),
        (
            r#"topo::linear(3, #{ ipv6: "fd00::", family: "ipv6" })"#,
            r#"linear(ipv6): "fd00::" is not an IPv6 prefix"#,
        ),
        (
            r#"topo::linear(3, #{ ipv6: "zz::/48", family: "ipv6" })"#,
            r#"linear(ipv6): "zz::/48" is not an IPv6 prefix"#,
        ),
        (
            r#"topo::linear(3, #{ container: "yes" })"#,
            "linear(container): expected a spawn spec",
        ),
        (
            "topo::linear(3, 5)",
            "linear(opts): options must be a map, got int",
        ),
        (
            "topo::linear(3, #{ mtu: 10 })",
            "linear(mtu): 10 is not an MTU",
        ),
        (
            r#"addr::host("10.0.0.0/24", "1")"#,
            "addr::host(n): expected an integer, got string",
        ),
        (
            r#"addr::host("10.0.0.x/24", 1)"#,
            r#"addr::host(cidr): "10.0.0.x/24" is not a CIDR"#,
        ),
        ("addr::ip(5)", "addr::ip(cidr): expected an address"),
        (
            r#"addr::to_int("+10.0.0.1")"#,
            r#"addr::to_int(ip): "+10.0.0.1" is not an IPv4 address"#,
        ),
        (
            r#"bridge::common("ctr0", #{ subnet: 10 })"#,
            r#"bridge::common(subnet): expected a CIDR like "10.0.0.0/24", got int"#,
        ),
        (
            r#"bridge::common("c", #{ subnet: "10.88.0.0/33" })"#,
            r#"bridge::common(subnet): "10.88.0.0/33": the prefix length must be 0..=32"#,
        ),
        (
            r#"router::attach(router::create("re"), netns_new(), #{ subnet: "10.1.0.0/31" })"#,
            "router::attach(subnet): host 2 does not fit in 10.1.0.0/31",
        ),
        (
            r#"nat::share(netns_new(), "r1-up", 5)"#,
            "nat::share(subnets): expected a CIDR or an array of CIDRs, got int",
        ),
        (
            r#"bridge::plug("ctr0", netns_new())"#,
            "bridge::plug(br): expected a bridge from bridge::common(), got string",
        ),
        (
            r#"router::uplink(router::create("ru"), netns_new(), #{ subnet: "203.0.113.0/24", masquerade: 5 })"#,
            "router::uplink(masquerade): expected a CIDR or an array of CIDRs, got int",
        ),
    ];
    let imports = r#"import "net/topology" as topo; import "net/addr" as addr;
        import "net/bridge" as bridge; import "net/router" as router; import "net/nat" as nat;
        "#;
    for (call, want) in cases {
        let err = eval_err(&format!("{imports}{call}"));
        assert!(err.contains(want), "{call}: expected {want:?} in\n{err}");
        // (The source line shown may hold a map literal; a printed rhai map has quoted keys.)
        for bad in [
            "#{\"",
            "i64",
            "ImmutableString",
            "Error parsing",
            "not registered",
        ] {
            assert!(!err.contains(bad), "{call}: {bad:?} in\n{err}");
        }
    }
    // A string is one subnet to masquerade, as nat::share takes it.
    let out = eval_ok(&format!(
        r#"{imports}
        let r = router::create("rs");
        let up = router::uplink(r, netns_new(), #{{ subnet: "203.0.113.0/24", masquerade: "10.1.0.0/24" }});
        print(up.router_addr);"#
    ));
    assert!(out.contains("203.0.113.2/24"), "{out}");
}

/// A call through an import that matches no function: the hint is about the module's
/// function, not a global function of the same name (the container `attach`).
#[test]
fn a_bad_call_of_a_module_function_points_at_its_doc() {
    let cases = [
        (
            r#"import "net/router" as router; router::attach(#{}, 1)"#,
            "no variant of router::attach() takes these arguments: router::attach(map, int)",
            "hint: `ctrsh doc router::attach` shows how to call it",
        ),
        (
            r#"import "net/addr" as addr; addr::host("10.0.0.0/24")"#,
            "no variant of addr::host() takes these arguments: addr::host(string)",
            "hint: `ctrsh doc addr::host` shows how to call it",
        ),
        (
            r#"import "net/addr" as a; a::hots("10.0.0.0/24", 1)"#,
            "no function a::hots() takes these arguments",
            "",
        ),
        (
            r#"import "net/addr" as addr; addr::hots("10.0.0.0/24", 1)"#,
            "no function addr::hots() takes these arguments",
            "hint: did you mean addr::host?",
        ),
    ];
    for (code, msg, hint) in cases {
        let err = eval_err(code);
        assert!(err.contains(msg), "{code}: {err}");
        assert!(err.contains(hint), "{code}: {err}");
        assert!(
            !err.contains("ctrsh doc attach`") && !err.contains("hostname"),
            "{code}: {err}"
        );
    }
}

/// ctr::container checks its limits and net values before the container exists, naming
/// them as container(limits.KEY) and container(net.KEY).
#[test]
fn ctr_container_checks_limits_and_net_values_first() {
    if !need_root() {
        return;
    }
    let cases = [
        (
            r#"limits: #{ memory: "12Q" }"#,
            r#"container(limits.memory): "12Q" is not a size"#,
        ),
        (
            r#"limits: #{ memroy: "1G" }"#,
            r#"container(limits.memroy): unknown option "memroy"; did you mean memory?"#,
        ),
        ("limits: 5", "container(limits): expected a map"),
        (
            r#"net: #{ veth: "ve-x", addr: "10.77.0.2" }"#,
            r#"container(net.addr): "10.77.0.2" is not address/prefix-length"#,
        ),
        (
            r#"net: #{ veth: "ve-x", addr: "fd00::2/64" }"#,
            "container(net.addr): fd00::2/64 is not an IPv4 address; give it as net.addr6",
        ),
        (
            r#"net: #{ veth: "ve-x", mtu: 10 }"#,
            "container(net.mtu): 10 is not an MTU",
        ),
        (
            r#"net: #{ veth: "ve-x", routed: "10.9.0.0/24" }"#,
            "container(net.routed): 10.9.0.0/24 needs the container's link address (addr)",
        ),
        (
            r#"net: #{ veth: "ve-x", addr: "10.0.0.2/24", routed: "10.9.0.1/24" }"#,
            r#"container(net.routed): "10.9.0.1/24" has host bits set"#,
        ),
    ];
    for (opt, want) in cases {
        let out = eval(&format!(
            r#"import "ctr" as ctr;
            ctr::container(#{{ cmd: ["true"], setup: |p| print("STARTED"), {opt} }});"#
        ));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{opt}: accepted");
        assert!(err.contains(want), "{opt}: expected {want:?} in\n{err}");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("STARTED"),
            "{opt}: the container was started first"
        );
    }
}

/// Everything of `tag` visible from the host: links in the host netns, cgroup directories
/// in any hierarchy, mounts, processes.
fn leftovers(tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(tag) {
            out.push(format!("link: {l}"));
        }
    }
    let find = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "5",
            "-type",
            "d",
            "-name",
            &format!("*{tag}*"),
        ])
        .output()
        .unwrap();
    for l in String::from_utf8_lossy(&find.stdout).lines() {
        out.push(format!("cgroup: {l}"));
    }
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if l.contains(tag) {
            out.push(format!("mount: {l}"));
        }
    }
    let ps = Command::new("pgrep").args(["-af", tag]).output().unwrap();
    for l in String::from_utf8_lossy(&ps.stdout).lines() {
        // The test's own ctrsh (its -e code holds the tag) has exited by now.
        out.push(format!("process: {l}"));
    }
    out
}

/// A recipe that builds a topology whose hosts are containers in a cgroup, plus a veth in
/// the host's netns, then ends as `ending` says.
fn topology_recipe(tag: &str, ending: &str) -> String {
    format!(
        r#"
        import "net/topology" as topo;
        let t = topo::linear(6, #{{ prefix: "{tag}", container: #{{
            ns: ["user", "mnt", "pid", "uts"],
            cmd: ["sh", "-c", "sleep 100; : {tag}"],
            cgroup: #{{ path: "{tag}", limits: #{{ pids: 50 }} }} }} }});
        veth("{tag}h", "{tag}c", #{{ b_ns: t.hosts[0].ns }});
        print(`built ${{t.hosts.len()}}`);
        {ending}
        "#
    )
}

#[test]
fn nothing_remains_after_a_normal_end_an_error_or_sigint() {
    if !need_root() {
        return;
    }
    // Normal end and an error halfway.
    for (ending, ok) in [("print(\"done\");", true), ("throw \"injected\";", false)] {
        let tag = unique("tl");
        let out = eval(&topology_recipe(&tag, ending));
        assert_eq!(
            out.status.success(),
            ok,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("built 6"));
        let left = leftovers(&tag);
        assert!(left.is_empty(), "after {ending}: {left:#?}");
    }
    // SIGINT halfway (while the recipe waits).
    let tag = unique("ti");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("ctrsh"))
        .arg("-e")
        .arg(topology_recipe(&tag, "sleep(60);"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut rd = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    rd.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "built 6");
    assert!(
        !leftovers(&tag).is_empty(),
        "the probe sees the running topology"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let left = leftovers(&tag);
    assert!(left.is_empty(), "after SIGINT: {left:#?}");
}

#[test]
fn bad_topology_input_fails_before_anything_is_made() {
    if !need_root() {
        return;
    }
    let cases = [
        ("topo::linear(0)", "linear(n)"),
        ("topo::linear(-3)", "linear(n)"),
        ("topo::tree(2, 0)", "fanout"),
        ("topo::star(300)", "at most 250"),
        (
            "topo::linear(5, #{ ipv4: \"10.0.0.0/23\" })",
            "has room for 2",
        ),
        (
            "topo::linear(3, #{ prefix: \"averyverylongname\" })",
            "prefix",
        ),
        ("topo::linear(3, #{ family: \"ipx\" })", "family"),
    ];
    for (call, want) in cases {
        let before = links_count();
        let err = eval_err(&format!("import \"net/topology\" as topo; {call}"));
        assert!(err.contains(want), "{call}: expected {want:?} in\n{err}");
        assert_eq!(links_count(), before, "{call} left links behind");
    }
}

#[test]
fn bad_ctr_and_bridge_options_fail_before_anything_is_made() {
    if !need_root() {
        return;
    }
    let tag = unique("bo");
    let cases = [
        (
            format!("ctr::run(#{{ cmd: [\"true\"], hostnme: \"{tag}\" }})"),
            "container(hostnme): unknown option \"hostnme\"; did you mean hostname?",
        ),
        (
            format!("ctr::run(#{{ cmd: [\"true\"], net: #{{ bridge: \"{tag}\", adr: \"10.9.0.2/24\" }} }})"),
            "container(net.adr): unknown option \"net.adr\"; did you mean net.addr",
        ),
        (
            format!("ctr::run(#{{ cmd: [\"true\"], net: #{{ veth: \"{tag}\", routd: true }} }})"),
            "container(net.routd)",
        ),
        (
            "ctr::run(#{ cmd: [\"true\"], net: #{ veth: \"a-name-of-16-chr\" } })".to_string(),
            "container(net.veth): \"a-name-of-16-chr\" is 16 bytes",
        ),
        (
            "ctr::run(#{ cmd: [\"true\"], rootfs: \"host_rw\" })".to_string(),
            "container(rootfs): unknown preset \"host_rw\"; did you mean \"host_ro\"?",
        ),
        (
            "ctr::run(#{ cmd: [\"true\"], rootfs: \"box\" })".to_string(),
            "container(rootfs): unknown preset \"box\"; the preset is \"host_ro\"; a directory is an absolute path (\"/box\")",
        ),
        (
            "ctr::run(#{ cmd: [\"true\"], net: 5 })".to_string(),
            "container(net): expected \"none\", \"host\" or a map, got 5",
        ),
        (
            format!("import \"net/bridge\" as b; b::common(\"{tag}\", #{{ subnt: \"10.9.0.0/24\" }})"),
            "bridge::common(subnt): unknown option \"subnt\"; did you mean subnet",
        ),
        (
            "import \"net/bridge\" as b; b::common(\"mybridge-abcde\", #{ subnet: \"10.9.0.0/24\" })".to_string(),
            "bridge::common(name): a name of 1 to 10 bytes (its ports are NAME-p0, NAME-p1 ..., at most 15 bytes), got \"mybridge-abcde\"",
        ),
        (
            "import \"net/bridge\" as b; b::common(\"br/0\", #{ subnet: \"10.9.0.0/24\" })".to_string(),
            "bridge::common(name): \"br/0\"",
        ),
    ];
    for (call, want) in cases {
        let before = links_count();
        let err = eval_err(&format!("import \"ctr\" as ctr; {call}"));
        assert!(err.contains(want), "{call}: expected {want:?} in\n{err}");
        assert!(
            err.starts_with("<eval>:1:"),
            "reported at the user's line: {err}"
        );
        assert_eq!(links_count(), before, "{call} left links behind");
    }
}

#[test]
fn ctr_net_host_shares_the_host_network() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"import "ctr" as ctr;
        print(ctr::run(#{ cmd: ["sh", "-c", "exit $(tail -n +3 /proc/net/dev | wc -l)"], net: "host" }));"#,
    );
    let host = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .count()
        - 2;
    assert_eq!(out.trim(), host.to_string(), "{out}");
}

fn links_count() -> usize {
    let o = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).lines().count()
}

#[test]
fn ctr_container_defaults_run_sh_as_root_with_only_lo() {
    if !need_root() {
        return;
    }
    let out = ctrsh()
        .arg("-e")
        .arg(r#"import "ctr" as ctr; exit(ctr::container(#{ cmd: ["sh"] }).wait())"#)
        .write_stdin("id -u; hostname; cat /etc/hostname; grep -c localhost /etc/hosts; cat /proc/net/dev | tail -n +3 | cut -d: -f1; ls /usr/bin/ls; touch /usr/x 2>/dev/null || echo ro; exit 3\n")
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = s.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "ctr", "ctr", "2", "lo", "/usr/bin/ls", "ro"]);
}

#[test]
fn ctr_networking_veth_dual_stack_v6_only_routed_and_bridged() {
    if !need_root() {
        return;
    }
    let tag = unique("cn");
    let out = eval_ok(&format!(
        r#"
        import "ctr" as ctr;
        import "net/bridge" as bridge;
        let hostside = netns_new();      // stands in for the host: nothing is added to ours
        link("lo", #{{ ns: hostside }}).set_up();
        // Three tries 0.2 s apart: the first IPv6 neighbour solicitation can race the
        // peer joining its solicited-node group right after the link comes up.
        let ping = |ns, dst| run(#{{ cmd: ["ping", "-c", "3", "-i", "0.2", "-W", "1", dst], join: #{{ net: ns }}, stdout: "null", stderr: "null" }});
        let sleeper = ["sleep", "30"];

        // A veth to the host, dual-stack.
        let a = ctr::container(#{{ cmd: sleeper, net: #{{ veth: "{tag}a", host_ns: hostside,
            addr: "10.91.0.2/24", host_addr: "10.91.0.1/24", addr6: "fd91::2/64", host_addr6: "fd91::1/64" }} }});
        print(`dual ${{ping.call(hostside, "10.91.0.2")}} ${{ping.call(hostside, "fd91::2")}} ${{ping.call(a.ns("net"), "10.91.0.1")}}`);

        // IPv6 only.
        let b = ctr::container(#{{ cmd: sleeper, net: #{{ veth: "{tag}b", host_ns: hostside,
            addr6: "fd92::2/64", host_addr6: "fd92::1/64" }} }});
        let v4 = output(#{{ cmd: ["ip", "-4", "-o", "addr", "show", "dev", "eth0"], join: #{{ net: b }} }}).stdout;
        print(`v6only ${{ping.call(hostside, "fd92::2")}} v4addrs=${{v4.len()}}`);

        // A routed prefix: 10.93.5.0/28 lives in the container, the host routes it there.
        let c = ctr::container(#{{ cmd: sleeper, net: #{{ veth: "{tag}c", host_ns: hostside,
            addr: "10.93.0.2/30", host_addr: "10.93.0.1/30", routed: "10.93.5.0/28" }} }});
        print(`routed ${{ping.call(hostside, "10.93.5.1")}}`);

        // Two containers bridged to a common bridge.
        let br = bridge::common("{tag}br", #{{ subnet: "10.94.0.0/24" }});
        let d = ctr::container(#{{ cmd: sleeper, net: #{{ bridge: br }} }});
        let e = ctr::container(#{{ cmd: sleeper, net: #{{ bridge: br }} }});
        let dip = output(#{{ cmd: ["ip", "-4", "-br", "addr", "show", "dev", "eth0"], join: #{{ net: d }} }}).stdout;
        let eip = output(#{{ cmd: ["ip", "-4", "-br", "addr", "show", "dev", "eth0"], join: #{{ net: e }} }}).stdout;
        print(`bridged ${{dip}} ${{eip}}`);
        print(`bridge ping ${{ping.call(d.ns("net"), "10.94.0.3")}} ${{ping.call(e.ns("net"), "10.94.0.2")}} ${{ping.call(d.ns("net"), "10.94.0.1")}}`);
        "#
    ));
    assert!(out.contains("dual 0 0 0"), "{out}");
    assert!(out.contains("v6only 0 v4addrs=0"), "{out}");
    assert!(out.contains("routed 0"), "{out}");
    assert!(
        out.contains("10.94.0.2/24") && out.contains("10.94.0.3/24"),
        "{out}"
    );
    assert!(out.contains("bridge ping 0 0 0"), "{out}");
}

#[test]
fn ctr_limits_put_the_container_in_a_cgroup_that_goes_away() {
    if !need_root() {
        return;
    }
    let out = eval_ok(
        r#"
        import "ctr" as ctr;
        let r = ctr::run(#{ limits: #{ memory: "32M" },
            cmd: ["python3", "-c", "b = bytearray(100 * 1024 * 1024); print('survived')"] });
        print(`status ${r}`);
        let ok = ctr::container(#{ limits: #{ pids: 20 }, cmd: ["sh", "-c", "cat /proc/self/cgroup"], stdout: "null" });
        print(`pid ${ok.pid} ${ok.wait()}`);
        "#,
    );
    assert!(out.contains("status 137"), "OOM-killed: {out}");
    assert!(!out.contains("survived"), "{out}");
    let pid = out
        .lines()
        .find_map(|l| l.strip_prefix("pid "))
        .and_then(|l| l.split(' ').next())
        .unwrap();
    assert!(leftovers(&format!("ctr-{pid}")).is_empty());
}

/// A netns made with `ip netns add`, deleted on drop: it outlives ctrsh like the host's.
struct NamedNs(String);

impl NamedNs {
    fn new(tag: &str) -> NamedNs {
        assert!(Command::new("ip")
            .args(["netns", "add", tag])
            .status()
            .unwrap()
            .success());
        NamedNs(tag.to_string())
    }
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for NamedNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Wait up to 5 s for `f` to hold (a dying network namespace takes its links a little later).
fn eventually(f: impl Fn() -> bool) -> bool {
    for _ in 0..50 {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn a_detached_container_keeps_its_cgroup_links_and_routes() {
    if !need_root() {
        return;
    }
    let tag = unique("dt");
    let host = NamedNs::new(&tag);
    let spec = |cmd: &str, veth: &str| {
        format!(
            r#"#{{ cmd: {cmd}, detach: true, limits: #{{ pids: 20 }}, stdout: "null", stderr: "null", setup: |p| print(`pid ${{p.pid}}`),
                net: #{{ veth: "{veth}", host_ns: ns_open("/run/netns/{tag}", "net"),
                         addr: "10.78.0.2/24", host_addr: "10.78.0.1/24", routed: "10.79.0.0/28" }} }}"#
        )
    };
    let out = eval_ok(&format!(
        r#"import "ctr" as ctr;
        let p = ctr::container({});
        print(`owned ${{resources().len()}}`);"#,
        spec(r#"["sleep", "60"]"#, &format!("{tag}a"))
    ));
    assert!(out.contains("owned 0"), "{out}");
    let pid = out
        .lines()
        .find_map(|l| l.strip_prefix("pid "))
        .unwrap()
        .to_string();
    // The recipe has ended: the container, its cgroup, its veth and its route are there.
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert!(alive(), "the container was killed");
    let cgroup = format!("ctr-{pid}");
    assert!(!leftovers(&cgroup).is_empty(), "its cgroup was removed");
    assert!(host.ip(&["-o", "link"]).contains(&format!("{tag}a")));
    assert!(host.ip(&["route"]).contains("10.79.0.0/28 via 10.78.0.2"));
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &tag,
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "10.79.0.1",
        ])
        .output()
        .unwrap();
    assert!(ping.status.success(), "the routed prefix is unreachable");
    // Removed the documented way: the process and the cgroup go, the links with the netns.
    eval_ok(&format!(
        r#"cgroup("/ctrsh/{cgroup}", #{{ controllers: ["pids"] }}).remove();"#
    ));
    assert!(eventually(|| !alive()), "still running");
    assert!(leftovers(&cgroup).is_empty(), "{:?}", leftovers(&cgroup));
    assert!(eventually(|| !host.ip(&["-o", "link"]).contains(&tag)));

    // A detached start that fails after setup leaves nothing either.
    let out = eval(&format!(
        r#"import "ctr" as ctr; ctr::container({});"#,
        spec(&format!(r#"["/nonexistent-{tag}"]"#), &format!("{tag}b"))
    ));
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid = stdout.lines().find_map(|l| l.strip_prefix("pid ")).unwrap();
    assert!(leftovers(&format!("ctr-{pid}")).is_empty());
    assert!(eventually(|| !host.ip(&["-o", "link"]).contains(&tag)));
    assert!(!host.ip(&["route"]).contains("10.79.0.0"));
}

#[test]
fn template_recipe_runs_the_seven_steps() {
    if !need_root() {
        return;
    }
    let out = run_ok("template.rhai", &[]);
    assert!(out.contains("pid 2 on template"), "{out}");
    assert!(out.contains("ping host: ok"), "{out}");
    assert!(out.contains("container exited with 0"), "{out}");
    let host_if = out
        .split("the veth ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap();
    assert!(leftovers(host_if).is_empty());
}

#[test]
fn router_nat_public_host_sees_the_router_address() {
    if !need_root() {
        return;
    }
    let out = run_ok("router-nat.rhai", &[]);
    assert!(
        out.contains("a -> outside: ok") && out.contains("b -> outside: ok"),
        "{out}"
    );
    assert!(
        out.contains("sees the source as 203.0.113.2 (router uplink: 203.0.113.2)"),
        "{out}"
    );
}

#[test]
fn addr_v6_host_refuses_a_host_outside_the_prefix() {
    let out = eval_ok(
        r#"import "net/addr" as addr;
        print(addr::v6_host("fd00::/120", 255));
        print(addr::v6_host("fd00::100/120", 3));
        print(addr::v6_host("fd00::/127", 1));
        for c in [["fd00::/120", 300], ["fd00::/128", 5], ["fd00::/127", 2]] {
            try { print(`accepted ${addr::v6_host(c[0], c[1])}`); } catch (e) { print(e.message); }
        }"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "fd00::ff/120",
            "fd00::103/120",
            "fd00::1/127",
            "addr::v6_host(n): host 300 does not fit in fd00::/120",
            "addr::v6_host(n): host 5 does not fit in fd00::/128",
            "addr::v6_host(n): host 2 does not fit in fd00::/127",
        ]
    );
}
