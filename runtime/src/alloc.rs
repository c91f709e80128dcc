//! mimalloc as the global allocator (feature `mimalloc`), and the plan's options
//! applied through its runtime API. mimalloc reads its `MIMALLOC_*` environment
//! options before `main`; what the plan decides can only be set afterwards, so only
//! options that take effect at any time are set here.

use coldstart_bootstrap::plan::Allocator;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_t` (not exported by the sys crate).
#[cfg(feature = "mimalloc")]
pub(crate) const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies the plan's allocator options. Without the `mimalloc` feature there is
/// nothing to apply: the program's own allocator is left alone.
pub(crate) fn apply(settings: &Allocator) {
    #[cfg(feature = "mimalloc")]
    if let Some(ms) = settings.purge_delay_ms {
        // An explicit MIMALLOC_PURGE_DELAY wins over the plan, as a variable should;
        // so does its older name, which mimalloc still reads.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none()
            && std::env::var_os("MIMALLOC_RESET_DELAY").is_none()
        {
            // SAFETY: mi_option_set only stores the value; any option index is checked
            // by mimalloc and the purge delay may change at any time.
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms as _) };
        }
    }
    #[cfg(not(feature = "mimalloc"))]
    let _ = settings;
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_index_is_mimallocs() {
        // mimalloc 3's default purge delay is 1000 ms; reading it through our index
        // guards against a version whose option table moved.
        // SAFETY: reading an option has no preconditions.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, 1000);
        }
        apply(&Allocator {
            purge_delay_ms: Some(0),
        });
        // SAFETY: as above.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            0
        );
    }
}
