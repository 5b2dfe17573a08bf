fn main() {
    std::process::exit(agent::cli::main());
}
