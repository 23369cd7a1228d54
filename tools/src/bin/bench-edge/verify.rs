//! The pass check alone, native and in wasm.

use std::process::Command;
use std::time::Instant;

use crate::measure::median;

/// Nanoseconds per pass verification: (native, wasm under wasmtime/Cranelift), the
/// same `KeyRing::verify` loop (`tests/verify-bench`, release profile) on the same
/// pass, medians of five timed loops each.
pub fn verify_cost(token: &str) -> (f64, f64) {
    const ITERATIONS: u32 = 100_000;
    let now = wr_tests::fixtures::now();
    let root = wr_tests::fixtures::workspace_root();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["run", "-q", "--release", "--manifest-path"])
        .arg(root.join("tests/verify-bench/Cargo.toml"))
        .arg("--target-dir")
        .arg(root.join("target/verify-bench"))
        .args(["--", token, &now.to_string(), &ITERATIONS.to_string()])
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "native verify-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let native: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("verify-bench prints nanoseconds");
    let engine = wasmtime::Engine::default();
    let module =
        wasmtime::Module::from_file(&engine, wr_tests::fixtures::side_wasm("verify-bench"))
            .expect("module");
    let mut store = wasmtime::Store::new(&engine, ());
    let mut linker = wasmtime::Linker::new(&engine);
    linker
        .define_unknown_imports_as_traps(&module)
        .expect("stub imports");
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiate");
    let alloc = instance
        .get_typed_func::<u32, u32>(&mut store, "alloc")
        .expect("alloc export");
    let verify_loop = instance
        .get_typed_func::<(u32, u32, u64, u32), u32>(&mut store, "verify_loop")
        .expect("verify_loop export");
    let len = token.len() as u32;
    let ptr = alloc.call(&mut store, len).expect("alloc");
    let memory = instance.get_memory(&mut store, "memory").expect("memory");
    memory
        .write(&mut store, ptr as usize, token.as_bytes())
        .expect("write token");
    let wasm = median(
        (0..5)
            .map(|_| {
                let started = Instant::now();
                let valid = verify_loop
                    .call(&mut store, (ptr, len, now, ITERATIONS))
                    .expect("verify_loop");
                assert_eq!(valid, ITERATIONS, "wasm verify refused the pass");
                started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
            })
            .collect(),
    );
    (native, wasm)
}
