fn main() {
    // The accuracy workers run this same module (see worker.rs): they serve, not render.
    if quant_playground::worker::in_worker() {
        quant_playground::worker::serve();
        return;
    }
    quant_playground::panic::install();
    quant_playground::remove_boot_note();
    leptos::mount::mount_to_body(quant_playground::App);
}
