/*
 * The floor baseline for the REST read row (scripts/bench): the least a libfcgi app can do
 * per request. THREADS threads each accept on SOCKET and answer every request with the same
 * ~80-byte JSON user object, closing the way FCGIApp does (the request read to its end, the
 * socket closed without libfcgi's wait for nginx to close first). No routing, no token, no
 * database: what nginx, FastCGI and the sockets cost per request on this machine.
 *
 * usage: fcgi_floor SOCKET THREADS     (runs until killed)
 */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int listening_socket;
static char response[256];
static int response_length;

/* libfcgi's FCGX_Init turns SIGTERM into a flag its blocked accept() never sees: exit here. */
static void on_sigterm(int signal_number) {
    (void)signal_number;
    _exit(0);
}

static void *serve(void *unused) {
    (void)unused;
    FCGX_Request request;
    char scratch[4096];
    FCGX_InitRequest(&request, listening_socket, 0);
    while (FCGX_Accept_r(&request) == 0) {
        FCGX_PutStr(response, response_length, request.out);
        while (FCGX_GetStr(scratch, sizeof scratch, request.in) > 0) {
        }
        request.detached = 1;
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc == 3 ? atoi(argv[2]) : 0;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "usage: fcgi_floor SOCKET THREADS (1-256)\n");
        return 2;
    }
    static const char body[] =
        "{\"id\":1,\"username\":\"benchreader\",\"display_name\":null,\"bio\":null,\"image_id\":null}";
    /* libfcgi's own printf does not know %zu: the whole response is formatted here. */
    response_length = snprintf(response, sizeof response,
                               "Status: 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                               (int)strlen(body), body);
    if (FCGX_Init() != 0) {
        fprintf(stderr, "fcgi_floor: FCGX_Init failed\n");
        return 1;
    }
    signal(SIGTERM, on_sigterm);
    unlink(argv[1]);
    listening_socket = FCGX_OpenSocket(argv[1], 1024);
    if (listening_socket < 0) {
        fprintf(stderr, "fcgi_floor: cannot listen on %s\n", argv[1]);
        return 1;
    }
    chmod(argv[1], 0666); /* nginx's workers run as another user; the directory is private */
    pthread_t workers[256];
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&workers[i], NULL, serve, NULL) != 0) {
            fprintf(stderr, "fcgi_floor: pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < threads; i++) pthread_join(workers[i], NULL);
    return 0;
}
