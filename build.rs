// Build steps cargo cannot infer:
// - the stdlib is embedded with include_dir!, which cargo does not track: rebuild when any
//   file under stdlib/ changes or is added;
// - link with packed relative relocations (DT_RELR) where the linker and the C library
//   support them: the dynamic loader then reads a few KiB instead of ~370 KiB of relocation
//   entries, which is about a quarter of ctrsh's start-up time. Probed, so an older
//   toolchain still builds (without the gain).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=stdlib");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") && linker_packs_relocs() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Does `cc` link (and does the result run with) -z pack-relative-relocs?
fn linker_packs_relocs() -> bool {
    let out = match std::env::var("OUT_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => return false,
    };
    let src = out.join("relr-probe.c");
    let bin = out.join("relr-probe");
    if std::fs::write(
        &src,
        "static int x; int *p = &x; int main(void) { return *p; }\n",
    )
    .is_err()
    {
        return false;
    }
    let linked = Command::new("cc")
        .args(["-pie", "-fPIE", "-Wl,-z,pack-relative-relocs", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .is_ok_and(|o| o.status.success());
    // Running it proves the C library's loader knows DT_RELR (glibc >= 2.36).
    linked && Command::new(&bin).status().is_ok_and(|s| s.success())
}
