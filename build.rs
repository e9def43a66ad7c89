// The stdlib is embedded with include_dir!, which cargo does not track: rebuild when any
// file under stdlib/ changes or is added.
fn main() {
    println!("cargo:rerun-if-changed=stdlib");
}
