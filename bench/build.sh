# Sourced by the benchmarks (from the project root): build the release binary and set
# $ctrsh to it. .cargo/config.toml names the host as the build target, so the binary is in
# target/<host-triple>/release/.
cargo build --release --quiet
ctrsh=$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/ctrsh
