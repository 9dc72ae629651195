fn main() {
    println!(
        "{}",
        serde_json::to_string_pretty(&streamctl::config::json_schema()).unwrap()
    );
}
