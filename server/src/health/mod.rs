//! Cluster health: a pure model over Kubernetes objects (this module), fed by
//! watchers and served by the API in later work (see the health issue).

pub mod model;
pub mod protection;
pub mod summary;
pub mod usage;
pub mod verdict;
pub mod views;
pub mod watch;
