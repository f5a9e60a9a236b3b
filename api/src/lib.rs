//! REST and GraphQL API over one service layer.
