#include <malloc.h>

// glibc's malloc statistics; Swift's Glibc module does not import mallinfo2.
typedef struct {
    size_t in_use;  // bytes handed out: in the arenas and in mmap'd chunks
    size_t free;    // bytes the arenas hold free for reuse (still counted in RSS when touched)
} cmalloc_heap;

static inline cmalloc_heap cmalloc_heap_now(void) {
    struct mallinfo2 info = mallinfo2();
    cmalloc_heap heap = { info.uordblks + info.hblkhd, info.fordblks };
    return heap;
}
