//! Query shape limits, checked as soon as a GraphQL query is parsed.
//!
//! Data queries may nest at most [`MAX_DEPTH`] fields. Introspection queries (every root field
//! is `__schema`, `__type` or `__typename`) may nest up to [`MAX_INTROSPECTION_DEPTH`], since the
//! standard introspection query of GraphiQL and SDK generators follows `ofType` chains deeper
//! than any data query needs; like graphql-js's `MaxIntrospectionDepthRule`, they may not nest
//! the list fields `fields`, `inputFields`, `interfaces` and `possibleTypes` more than
//! [`MAX_INTROSPECTION_LISTS`] deep, which is what would let a small query expand exponentially.
//! Complexity is limited by the schema builder for both.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

/// Maximum depth of a data query.
pub const MAX_DEPTH: usize = 12;
/// Maximum depth of an introspection query (the schema builder's depth limit).
pub const MAX_INTROSPECTION_DEPTH: usize = 24;
/// Maximum nesting of introspection list fields.
const MAX_INTROSPECTION_LISTS: usize = 3;

/// The [`ExtensionFactory`] that installs the checks.
pub struct QueryShape;

impl ExtensionFactory for QueryShape {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryShape)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for QueryShape {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        check(&document)?;
        Ok(document)
    }
}

fn check(document: &ExecutableDocument) -> ServerResult<()> {
    for (_, operation) in document.operations.iter() {
        let root = &operation.node.selection_set.node;
        let mut shape = Shape::default();
        walk(document, root, 1, 0, &mut shape);
        if shape.introspection_only {
            if shape.lists > MAX_INTROSPECTION_LISTS {
                return Err(ServerError::new(
                    "Introspection query nests fields, inputFields, interfaces or possibleTypes too deep.",
                    None,
                ));
            }
        } else if shape.depth > MAX_DEPTH {
            return Err(ServerError::new("Query is nested too deep.", None));
        }
    }
    Ok(())
}

struct Shape {
    depth: usize,
    lists: usize,
    introspection_only: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            depth: 0,
            lists: 0,
            introspection_only: true,
        }
    }
}

/// Walks a selection set with fragments inlined. Stops descending past the largest depth any
/// query may have, so a fragment cycle (refused later by validation) cannot loop here.
fn walk(
    document: &ExecutableDocument,
    set: &SelectionSet,
    depth: usize,
    lists: usize,
    shape: &mut Shape,
) {
    if depth > MAX_INTROSPECTION_DEPTH + 1 {
        return;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                if depth == 1 && !name.starts_with("__") {
                    shape.introspection_only = false;
                }
                let lists = lists
                    + usize::from(matches!(
                        name,
                        "fields" | "inputFields" | "interfaces" | "possibleTypes"
                    ));
                shape.depth = shape.depth.max(depth);
                shape.lists = shape.lists.max(lists);
                walk(
                    document,
                    &field.node.selection_set.node,
                    depth + 1,
                    lists,
                    shape,
                );
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) {
                    walk(
                        document,
                        &fragment.node.selection_set.node,
                        depth,
                        lists,
                        shape,
                    );
                }
            }
            Selection::InlineFragment(inline) => {
                walk(
                    document,
                    &inline.node.selection_set.node,
                    depth,
                    lists,
                    shape,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_error(query: &str) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        check(&document).err().map(|e| e.message)
    }

    fn nested(depth: usize) -> String {
        let mut query = "id".to_owned();
        for _ in 1..depth {
            query = format!("node {{ {query} }}");
        }
        format!("{{ {query} }}")
    }

    #[test]
    fn data_queries_are_limited_to_max_depth() {
        assert_eq!(shape_error(&nested(MAX_DEPTH)), None);
        assert_eq!(
            shape_error(&nested(MAX_DEPTH + 1)).as_deref(),
            Some("Query is nested too deep.")
        );
    }

    #[test]
    fn the_standard_introspection_query_passes() {
        assert_eq!(shape_error(INTROSPECTION), None);
    }

    #[test]
    fn fragments_count_towards_depth() {
        let query = "query { ...A } fragment A on Query { a { ...B } } fragment B on T { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } }";
        assert_eq!(
            shape_error(query).as_deref(),
            Some("Query is nested too deep.")
        );
    }

    #[test]
    fn exponential_introspection_is_refused() {
        let query = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }";
        assert!(shape_error(query).unwrap().contains("Introspection"));
    }

    #[test]
    fn a_data_field_beside_introspection_is_a_data_query() {
        let deep = nested(MAX_DEPTH + 1);
        let query = format!("{{ __typename {} }}", &deep[1..deep.len() - 1]);
        assert_eq!(
            shape_error(&query).as_deref(),
            Some("Query is nested too deep.")
        );
    }

    /// graphql-js 16's `getIntrospectionQuery({ inputValueDeprecation: true })`, as GraphiQL sends it.
    const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name description type { ...TypeRef } defaultValue isDeprecated deprecationReason
}
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType {
    kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }
}
"#;
}
