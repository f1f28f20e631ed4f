fn main() {
    eprintln!("loadtest: not implemented yet (issue 3)");
    std::process::exit(2);
}
