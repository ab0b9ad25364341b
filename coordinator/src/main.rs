//! The coordinator is the next issue's work. Until then the binary says so and fails, so no
//! script mistakes it for a running service.

mod store;

fn main() {
    eprintln!(
        "warren-coordinator {}: not built yet; Warren currently runs in manual mode \
         (static peers in warrend's --config file)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
