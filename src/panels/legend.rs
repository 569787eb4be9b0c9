//! The legend of the charts that plot both schemes against bit width. Each series is told apart
//! by line style and marker as well as colour.

use leptos::prelude::*;

#[component]
pub fn SchemeLegend(
    /// Whether the chart also draws the FP32 reference line.
    #[prop(default = false)]
    fp32: bool,
) -> impl IntoView {
    view! {
        <ul class="legend">
            <li><span class="swatch sym"></span>"symmetric (solid, ●)"</li>
            <li><span class="swatch asym"></span>"asymmetric (dashed, ▲)"</li>
            {fp32.then(|| view! { <li><span class="swatch fp32line"></span>"FP32 (dotted)"</li> })}
            <li><span class="swatch ring"></span>"your setting"</li>
        </ul>
    }
}
