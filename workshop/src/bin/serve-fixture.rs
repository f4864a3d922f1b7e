//! A function that misbehaves on purpose: see `lab::fixture`.

fn main() {
    lab::fixture::main();
}
