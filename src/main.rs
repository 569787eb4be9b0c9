fn main() {
    quant_playground::panic::install();
    leptos::mount::mount_to_body(quant_playground::App);
}
