//! `sqlx::migrate!` embeds `migrations/` when the crate compiles; without
//! this, a new migration file is not picked up until some source file changes.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
