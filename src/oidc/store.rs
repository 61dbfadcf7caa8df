//! Where the provider keeps its grants, codes, tokens, device requests and logout deliveries:
//! the database in `data_dir` (one host), or Redis with `store.backend = "redis"`, so that
//! replicas on several hosts share them (a code redeemed on one replica is spent on all, and a
//! reused refresh token revokes its family everywhere).

use std::sync::Arc;

use crate::db::{Db, DbError};

/// The provider's state store.
#[derive(Debug, Clone)]
pub enum Store {
    Db(Arc<Db>),
    Redis(Arc<super::redis::Shared>),
}

impl From<Arc<Db>> for Store {
    fn from(db: Arc<Db>) -> Self {
        Self::Db(db)
    }
}

/// The store could not be read or written: the request gets a 503, and nothing is issued.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("Redis (store.redis_url): {0}")]
    Redis(String),
}
