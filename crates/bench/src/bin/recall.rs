//! `xueliang-recall`: adaptive detection against the full rate on the same
//! clips (see `recall/mod.rs`).

#[path = "../recall/mod.rs"]
mod recall;

fn main() -> anyhow::Result<()> {
    recall::main()
}
