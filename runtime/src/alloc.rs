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
        // so does its older name, which mimalloc still reads. mimalloc reads both in
        // any case (`mimalloc_purge_delay` too).
        if !environment_sets(&coldstart_bootstrap::plan::MIMALLOC_PURGE_DELAY) {
            // SAFETY: mi_option_set only stores the value; any option index is checked
            // by mimalloc and the purge delay may change at any time.
            unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms as _) };
        }
    }
    #[cfg(not(feature = "mimalloc"))]
    let _ = settings;
}

/// Whether the process environment sets one of `names`, in any case, as mimalloc
/// reads its options: from `environ`, without copying it.
#[cfg(feature = "mimalloc")]
fn environment_sets(names: &[&str]) -> bool {
    unsafe extern "C" {
        // Mutable: `setenv` replaces it (as std declares it too).
        static mut environ: *const *const libc::c_char;
    }
    // SAFETY: `environ` is the C library's list of NUL-terminated entries, ended by a
    // null pointer, read through a raw pointer (no reference to the mutable static).
    // Read as mimalloc and `getenv` read it: a thread setting a variable at the same
    // moment (`set_var`, itself `unsafe` for that reason) is the caller's to avoid.
    unsafe {
        let mut entry = (&raw const environ).read();
        while !entry.is_null() && !(*entry).is_null() {
            let text = std::ffi::CStr::from_ptr(*entry).to_bytes();
            if names.iter().any(|name| names_the_entry(text, name)) {
                return true;
            }
            entry = entry.add(1);
        }
    }
    false
}

/// Whether the environment entry `entry` (`NAME=value`) is `name`'s, in any case.
#[cfg(feature = "mimalloc")]
fn names_the_entry(entry: &[u8], name: &str) -> bool {
    entry
        .get(..name.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(name.as_bytes()))
        && entry.get(name.len()) == Some(&b'=')
}

#[cfg(all(test, feature = "mimalloc"))]
mod tests {
    use super::*;

    #[test]
    fn an_option_is_named_in_any_case_as_mimalloc_reads_it() {
        let name = "MIMALLOC_PURGE_DELAY";
        assert!(names_the_entry(b"MIMALLOC_PURGE_DELAY=10", name));
        assert!(names_the_entry(b"mimalloc_purge_delay=10", name));
        assert!(names_the_entry(b"MIMALLOC_PURGE_DELAY=", name));
        assert!(!names_the_entry(b"MIMALLOC_PURGE_DELAYS=10", name));
        assert!(!names_the_entry(b"MIMALLOC_PURGE", name));
        assert!(!names_the_entry(b"MIMALLOC_PURGE_DELAY", name));
        // The process's own environment is read: `PATH` is set wherever tests run.
        assert!(environment_sets(&["path"]));
        assert!(!environment_sets(&["COLDSTART_NO_SUCH_VARIABLE_SET"]));
    }

    #[test]
    fn purge_delay_index_is_mimallocs() {
        // mimalloc 3's default purge delay is 1000 ms; reading it through our index
        // guards against a version whose option table moved.
        // SAFETY: reading an option has no preconditions.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        // Where the environment sets the option (in any case), it wins over the plan.
        let given = environment_sets(&coldstart_bootstrap::plan::MIMALLOC_PURGE_DELAY);
        if !given {
            assert_eq!(before, 1000);
        }
        apply(&Allocator {
            purge_delay_ms: Some(0),
        });
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(after, if given { before } else { 0 });
    }
}
