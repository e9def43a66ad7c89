// Build steps cargo cannot infer:
// - the stdlib is embedded with include_dir!, which cargo does not track: rebuild when any
//   file under stdlib/ changes or is added;
// - link with packed relative relocations (DT_RELR) where the linker and the C library
//   support them: the dynamic loader then reads a few KiB instead of ~370 KiB of relocation
//   entries, which is about a quarter of ctrsh's start-up time. Probed, so an older
//   toolchain still builds (without the gain);
// - place the functions a start runs side by side (build/startup-symbols.txt, made by
//   bench/startup-order.sh) where the linker is lld, as rustc's default on x86_64 Linux is:
//   a start maps ~a third fewer pages of the binary. Probed with the same rustc, target and
//   flags; any other linker builds without it.
use std::path::{Path, PathBuf};
use std::process::Command;

const SYMBOL_ORDER: &str = "build/startup-symbols.txt";

fn main() {
    println!("cargo:rerun-if-changed=stdlib");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={SYMBOL_ORDER}");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    if linker_packs_relocs() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = Path::new(env!("CARGO_MANIFEST_DIR")).join(SYMBOL_ORDER);
    if order.is_file() {
        let args = [
            format!("-Wl,--symbol-ordering-file={}", order.display()),
            // Names gone since the list was made are expected; they are skipped.
            "-Wl,--no-warn-symbol-ordering".to_string(),
        ];
        if rustc_links_with(&args) {
            for a in args {
                println!("cargo:rustc-link-arg-bins={a}");
            }
        }
    }
}

/// Does the rustc of this build, for this target and with these flags, link a program
/// with `link_args` (i.e. is its linker lld)?
fn rustc_links_with(link_args: &[String]) -> bool {
    let (Ok(out), Ok(rustc), Ok(target)) = (
        std::env::var("OUT_DIR"),
        std::env::var("RUSTC"),
        std::env::var("TARGET"),
    ) else {
        return false;
    };
    let out = PathBuf::from(out);
    let src = out.join("order-probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut cmd = Command::new(rustc);
    cmd.args(flags.split('\x1f').filter(|f| !f.is_empty()))
        .args(["--crate-type", "bin", "--target", &target, "-o"])
        .arg(out.join("order-probe"))
        .arg(&src);
    for a in link_args {
        cmd.arg("-C").arg(format!("link-arg={a}"));
    }
    cmd.output().is_ok_and(|o| o.status.success())
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
