//! The model: what things are, parsed once, knowing nothing of storage or HTTP. Nothing here
//! imports from `store`, `webhook` or `http`.

pub mod api_key;
