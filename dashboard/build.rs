//! Bundles the dashboard's web app (`web/`) with esbuild into `OUT_DIR/web`, and writes
//! `OUT_DIR/assets.rs`, which embeds every file it made (and its .gz) for `src/lib.rs`.
//! Installs `web/node_modules` with `npm ci` first when they are missing or older than the lock
//! file. Needs Node.js 18 or newer and npm (`make test` and CI have them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    let web = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("web");
    for input in ["src", "build.mjs", "package.json", "package-lock.json", "../../sdks/node/src", "../../sdks/node/package.json"] {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    let installed = web.join("node_modules/.package-lock.json");
    if modified(&installed) < modified(&web.join("package-lock.json")) {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(&web));
    }
    let dist = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("web");
    run(Command::new("node").arg("build.mjs").arg("--outdir").arg(&dist).current_dir(&web));

    let mut names: Vec<String> = fs::read_dir(&dist)
        .expect("build.mjs made its directory")
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".gz"))
        .collect();
    names.sort();
    let mut code = String::from("/// Every file of the bundle (made by build.rs).\npub static ASSETS: &[Asset] = &[\n");
    for name in names {
        let path = dist.join(&name);
        let gz = dist.join(format!("{name}.gz"));
        code += &format!("    Asset {{ name: {name:?}, body: include_bytes!({path:?}), gzip: include_bytes!({gz:?}) }},\n");
    }
    code += "];\n";
    fs::write(dist.with_file_name("assets.rs"), code).expect("OUT_DIR is writable");
}

fn modified(path: &Path) -> std::time::SystemTime {
    fs::metadata(path).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH)
}

fn run(cmd: &mut Command) {
    let what = format!("{cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{what} failed ({s}); the dashboard is built with Node.js and npm from dashboard/web"),
        Err(e) => panic!("{what} could not run ({e}); the dashboard needs Node.js 18+ and npm on PATH"),
    }
}
