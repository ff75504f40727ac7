//! nntpd: see nntpd(8).
fn main() {
    // Articles come in batches of buffers of the same sizes: keep them.
    classicd::sys::keep_freed_memory(16 << 20);
    classicd::runtime::run(&classicd::nntp::SERVICE)
}
