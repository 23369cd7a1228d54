//! The Compute program: `cargo build -p wr-edge-fastly --target wasm32-wasip1 --release`.

#[cfg(target_arch = "wasm32")]
fn main() {
    wr_edge_fastly::compute::serve();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("wr-edge-fastly runs on Fastly Compute: build it with --target wasm32-wasip1");
    std::process::exit(2);
}
