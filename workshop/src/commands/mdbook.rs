//! `cargo workshop mdbook`: the book's preprocessor, as mdbook runs it.

use std::io::Read;
use std::process::ExitCode;

use workshop::book;
use workshop::steps::Workshop;

pub fn run(workshop: &Workshop, args: &[String]) -> Result<ExitCode, String> {
    if args.first().map(String::as_str) == Some("supports") {
        return Ok(ExitCode::SUCCESS);
    }
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the book from mdbook (standard input): {e}"))?;
    print!("{}", book::preprocess(&input, workshop)?);
    Ok(ExitCode::SUCCESS)
}
