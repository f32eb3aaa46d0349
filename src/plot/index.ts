// Public face of the plot module: chart builders (pure, return vega-lite specs) and the renderer
// that writes SVG and PNG files.
export * from './charts.js';
export * from './render.js';
