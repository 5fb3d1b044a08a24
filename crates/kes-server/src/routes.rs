//! The route table lives in `kes_api::routes`, the one source of the API's routes (the config
//! file's `api:` section and the client use it too).

pub use kes_api::routes::{Auth, Endpoint, Lookup, ROUTES, index_of, is_list, lookup};
