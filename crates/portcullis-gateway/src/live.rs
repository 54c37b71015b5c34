//! A value replaced as a whole while readers keep the one they took: what a configuration
//! reload swaps (the apps, the event-stream paths). A reader takes the current `Arc` once (one
//! short read lock) and works with it to the end of its request or connection; a writer
//! replaces it for the readers that come after.

use std::sync::{Arc, PoisonError, RwLock};

pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Live(self.0.clone())
    }
}

impl<T> Live<T> {
    pub fn new(value: T) -> Live<T> {
        Live(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The current value. The lock is held only to clone the `Arc` (a panic cannot happen
    /// while it is held, so a poisoned lock still holds a whole value).
    pub fn load(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replace the value for every later `load`; returns the one replaced.
    pub fn store(&self, value: Arc<T>) -> Arc<T> {
        let mut current = self.0.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, value)
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Self {
        Live::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::Live;
    use std::sync::Arc;

    #[test]
    fn a_reader_keeps_what_it_loaded_and_later_readers_see_the_new_value() {
        let live = Live::new(1);
        let before = live.load();
        let old = live.store(Arc::new(2));
        assert_eq!((*before, *old, *live.load()), (1, 1, 2));
        assert_eq!(*live.clone().load(), 2);
    }
}
