// The widget embedder (embed-amd.js) loads its FontAwesome fonts from the URL that
// RequireJS gives its module "@jupyter-widgets/html-manager/dist/libembed-amd", which by
// default is relative to the page. Map that module path to this folder, where the fonts
// are vendored, so that no request 404s when the book is read offline.
require.config({
  paths: { "@jupyter-widgets/html-manager/dist": new URL(".", document.currentScript.src).href.replace(/\/$/, "") },
});
