//! What the supervising agent gives back: the pages of code that only its
//! start ran, and the heap a burst of HTTP connections left free.
//!
//! Both are safe at any moment. The read-only segments of the executable and
//! its libraries are clean file pages, never written (the relocated pointers
//! live in the writable segment, left alone): unmapped, they stay in the page
//! cache, and a later call into them maps them again from there. Mapped, the
//! kernel can reclaim them only after it unmaps them itself.

use std::ffi::CStr;
use std::time::Duration;

/// How long after the child's first start the agent's own start is over.
pub const SETTLE: Duration = Duration::from_secs(1);
/// The free heap kept when the last HTTP connection closes; more is returned.
const KEEP_FREE_HEAP: usize = 256 * 1024;

/// One allocator arena for every thread, set before the first thread starts:
/// the agent's few threads (the output pump, blocking tasks) then share the
/// heap rather than each reserving and touching an arena of its own.
pub fn one_arena() {
    // SAFETY: sets an allocator parameter; no allocation is in flight.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Once [`SETTLE`] has passed, unmaps the code and constants the start ran
/// and returns the free heap; the pages the agent runs on come back as used.
pub fn release_after_settling() {
    tokio::spawn(async {
        tokio::time::sleep(SETTLE).await;
        let released = release_read_only_segments();
        trim_heap();
        tracing::debug!(
            released_kb = released / 1024,
            "released the start's code pages"
        );
    });
}

/// Returns the allocator's free pages to the system when it holds more than
/// [`KEEP_FREE_HEAP`] free (after a burst of connections, say).
pub fn trim_heap() {
    // SAFETY: both only read and adjust the allocator's own state.
    unsafe {
        if libc::mallinfo2().fordblks > KEEP_FREE_HEAP {
            libc::malloc_trim(0);
        }
    }
}

/// Drops the mappings of every whole page of the loaded objects' read-only
/// segments (the vDSO excepted); returns how many bytes that covered.
fn release_read_only_segments() -> usize {
    let mut released = 0usize;
    // SAFETY: the callback reads only the headers the loader hands it, for
    // the duration of the call.
    unsafe {
        libc::dl_iterate_phdr(Some(release_object), (&raw mut released).cast());
    }
    released
}

unsafe extern "C" fn release_object(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    released: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid `dl_phdr_info` whose `dlpi_phdr`
    // points to `dlpi_phnum` headers, and `released` is the `usize` above.
    let (info, released) = unsafe { (&*info, &mut *released.cast::<usize>()) };
    let name = match info.dlpi_name.is_null() {
        true => c"",
        // SAFETY: a non-null name is a NUL-terminated string of the loader's.
        false => unsafe { CStr::from_ptr(info.dlpi_name) },
    };
    if name.to_bytes().starts_with(b"linux-vdso") {
        return 0;
    }
    // SAFETY: see above.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    let page = page_size();
    for header in headers {
        if header.p_type != libc::PT_LOAD || header.p_flags & libc::PF_W != 0 {
            continue;
        }
        let start = info.dlpi_addr as usize + header.p_vaddr as usize;
        let end = start + header.p_memsz as usize;
        // Whole pages only: a page shared with a neighbour is left mapped.
        let (start, end) = (start.next_multiple_of(page), end / page * page);
        if end <= start {
            continue;
        }
        // SAFETY: the range lies within a read-only mapping of a file.
        if unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) }
            == 0
        {
            *released += end - start;
        }
    }
    0
}

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    }
}
