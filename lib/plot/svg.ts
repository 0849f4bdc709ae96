/**
 * Headless SVG rendering of Vega-Lite specs (no browser, no canvas): compile with vega-lite, run
 * the Vega view with the `none` renderer and serialise it to SVG. Used by the benchmark's plots,
 * the fault campaign's plot and `sdv-failover report --svg`.
 *
 * @module
 */
import * as vega from "vega";
import * as vl from "vega-lite";

/**
 * Renders a Vega-Lite spec to an SVG document (a string starting with `<svg`).
 * @throws Error when the spec does not compile or the view fails to render.
 */
export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
