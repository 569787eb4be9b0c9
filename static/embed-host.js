// What a host page adds to size Quantization Playground widgets to their content: each widget
// posts {type: "quant-playground:resize", height} whenever its height changes.
window.addEventListener('message', (event) => {
  if (!event.data || event.data.type !== 'quant-playground:resize') return;
  for (const frame of document.querySelectorAll('iframe')) {
    if (frame.contentWindow === event.source) frame.style.height = `${Math.ceil(event.data.height)}px`;
  }
});
