//! GraphiQL, served from the binary.
//!
//! The browser builds of graphiql and React are vendored under `api/assets/graphiql/` (versions
//! and checksums in its `VERSIONS` file) and compiled in, so the explorer works on an air-gapped
//! deployment and staff browsers load nothing from a CDN. Asset URLs carry the graphiql version,
//! so they can be cached forever.

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::ApiError;

/// The vendored graphiql version; part of every asset URL.
const VERSION: &str = "4.1.2";

/// Where the assets are served.
const ASSETS_PATH: &str = "/graphql/assets";

/// `(file name, content type, bytes)` of every vendored asset.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
];

/// The asset routes; the page itself is `GET /graphql` (see [`page`]).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(&format!("{ASSETS_PATH}/{{version}}/{{file}}"), get(asset))
}

/// The GraphiQL page, talking to `endpoint`.
pub async fn page() -> Html<String> {
    Html(render("/graphql"))
}

fn render(endpoint: &str) -> String {
    let base = format!("{ASSETS_PATH}/{VERSION}");
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cleanmail GraphQL</title>
<link rel="stylesheet" href="{base}/graphiql.min.css">
<style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{base}/react.production.min.js"></script>
<script src="{base}/react-dom.production.min.js"></script>
<script src="{base}/graphiql.min.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({{ url: "{endpoint}" }});
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher,
      defaultEditorToolsVisibility: "headers",
      defaultHeaders: '{{\n  "Authorization": "Bearer <login token or API key>"\n}}',
      defaultQuery: "# Authenticate in the Headers tab below, then:\n{{ me {{ role }} }}\n",
    }})
  );
</script>
</body>
</html>
"##
    )
}

async fn asset(Path((version, file)): Path<(String, String)>) -> Result<Response, ApiError> {
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(name, _, _)| version == VERSION && *name == file)
        .ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        *bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_every_asset_from_the_binary_and_nothing_from_a_cdn() {
        let page = render("/graphql");
        for (name, _, bytes) in ASSETS {
            assert!(
                page.contains(&format!("{ASSETS_PATH}/{VERSION}/{name}")),
                "{name}"
            );
            assert!(bytes.len() > 1000, "{name} is vendored");
        }
        assert!(!page.contains("https://"), "no remote asset: {page}");
    }
}
