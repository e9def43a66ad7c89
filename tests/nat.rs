//! NAT through nftables over netlink, checked with `nft list ruleset` as the oracle.

mod common;
use std::process::Command;

use common::*;

/// A named netns made by the test (iproute2), removed on drop.
struct NetnsGuard(String);

impl NetnsGuard {
    fn new() -> NetnsGuard {
        let name = unique("ctnat");
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        NetnsGuard(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
    fn ruleset(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn have_nft() -> bool {
    is_root()
        && Command::new("nft")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

#[test]
fn masquerade_rules_match_nft_and_vanish_at_the_end_unless_kept() {
    if !have_nft() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let ns = NetnsGuard::new();
    eval_ok(&format!(
        r#"let n = ns_open("{p}", "net");
           masquerade(#{{ src: "10.1.0.7/24", out: "uplink", ns: n, table: "kept4", keep: true }});
           masquerade(#{{ src: "fd00:1::/64", out: "up6", ns: n, table: "kept6", keep: true }});
           masquerade(#{{ src: "10.9.0.0/16", out: "eth0", ns: n, table: "temporary" }});
           // While the recipe runs, the temporary table exists.
           if !resources().some(|r| r.contains("temporary")) {{ throw "not owned"; }}"#,
        p = ns.path()
    ));
    let rules = ns.ruleset();
    assert!(rules.contains("table ip kept4"), "{rules}");
    assert!(
        rules.contains("type nat hook postrouting priority srcnat"),
        "{rules}"
    );
    assert!(
        rules.contains("ip saddr 10.1.0.0/24 oifname \"uplink\" masquerade"),
        "{rules}"
    );
    assert!(
        rules.contains("ip6 saddr fd00:1::/64 oifname \"up6\" masquerade"),
        "{rules}"
    );
    assert!(
        !rules.contains("temporary"),
        "the recipe's own table must be gone: {rules}"
    );
}

#[test]
fn masquerade_refuses_an_existing_table_and_bad_input() {
    if !have_nft() {
        eprintln!("skipped: needs root and nft");
        return;
    }
    let ns = NetnsGuard::new();
    let err = eval_err(&format!(
        r#"let n = ns_open("{p}", "net");
           masquerade(#{{ src: "10.1.0.0/24", out: "a", ns: n, table: "mine", keep: true }});
           masquerade(#{{ src: "10.1.0.0/24", out: "a", ns: n, table: "mine" }});"#,
        p = ns.path()
    ));
    assert!(
        err.contains("EEXIST") && err.contains("exists already"),
        "{err}"
    );
    // The existing table was not deleted by the failed call's cleanup.
    assert!(ns.ruleset().contains("table ip mine"));
    for (code, needle) in [
        (
            r#"masquerade(#{ src: "10.1.0.0/33", out: "a" })"#,
            "masquerade(src): prefix length",
        ),
        (
            r#"masquerade(#{ src: "fe80::zz/64", out: "a" })"#,
            "is not an IP address",
        ),
        (
            r#"masquerade(#{ src: "10.0.0.0/8", out: "a-name-that-is-too-long" })"#,
            "masquerade(out)",
        ),
        (
            r#"masquerade(#{ src: "10.0.0.0/8" })"#,
            "missing required option \"out\"",
        ),
        (
            r#"masquerade(#{ src: "10.0.0.0/8", out: "a", tabel: "x" })"#,
            "did you mean table?",
        ),
        (
            r#"masquerade(#{ src: "10.0.0.0/8", out: "a", table: "no spaces" })"#,
            "not a valid table name",
        ),
    ] {
        let err = eval_err(code);
        assert!(err.contains(needle), "{code}: {err}");
    }
}
