/*
 * A minimal sdv-failover application instance in C (libmosquitto 2.0, cJSON).
 *
 *   cc -O2 -Wall -o app app.c $(pkg-config --cflags --libs libmosquitto libcjson) -lpthread -lm
 *   (Debian: apt-get install gcc pkg-config libmosquitto-dev libcjson-dev)
 *
 * It does what docs/app_contract.md asks of every app:
 *  (a) publishes its app heartbeat {"seq":n}, QoS 0, not retained, on
 *      {prefix}/app/{workload}/{node}/hb every period, from its own work loop (a hung loop must
 *      stop the heartbeat, or the supervisor cannot see the hang);
 *  (b) follows the retained QoS 1 promotion on {prefix}/workload/{workload}/promotion: it obeys
 *      only a well-formed promotion of its workload from a configured supervisor id, naming one of
 *      the workload's two nodes, at an epoch above the one it holds (the fencing token);
 *  (c) on broker loss keeps its role for at most the app heartbeat timeout, then stands by until
 *      it has re-read the retained promotion; it never makes itself active;
 *  (d) with a broker pair (mqtt.pairUrl) keeps a session to each broker: heartbeats go to both,
 *      promotions are taken from either (the other broker's copy holds the epoch held: a repeat),
 *      and "broker loss" in (c) means both are lost.
 *
 * Settings come from the environment, as in examples/python/app.py (all times in ms):
 *   SDV_WORKLOAD, SDV_NODE, SDV_PRIMARY_NODE, SDV_STANDBY_NODE          required
 *   SDV_BROKER_HOST=127.0.0.1 SDV_BROKER_PORT=1883 SDV_TOPIC_PREFIX=sdv
 *   SDV_BROKER2_HOST, SDV_BROKER2_PORT=1883 (the second broker of a pair, mqtt.pairUrl; unset: none)
 *   SDV_ISSUERS=supervisor (comma-separated) SDV_HEARTBEAT_PERIOD_MS=33 SDV_APP_TIMEOUT_MS=300
 *   SDV_RECONNECT_PERIOD_MS=100 (at most a third of the app timeout: after a broker blip the
 *   supervisor gives every target one timeout, so the heartbeat must be back within it)
 *   SDV_TLS_CA, SDV_TLS_CERT, SDV_TLS_KEY (the locked bus: this instance's app:<workload>:<node>)
 *
 * Output, one line per event: `role=active|standby epoch=N activeNode=NODE why=...`,
 * `promotion obeyed|repeated|ignored ...` (repeated: the promotion held, again: the pair's second
 * copy, or a retained one after a reconnect), `broker connected|lost HOST:PORT connected=N` (N:
 * sessions up).
 */
#include <cJSON.h>
#include <math.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EPOCH 2147483647L /* 2^31 - 1, lib/wire/wire.ts */
#define MAX_PROMOTION_BYTES 4096
#define SETTLE_MS 200 /* the broker sends the retained promotion right behind the SUBACK */
#define NAME_LEN 254

static const char *workload, *node, *primary, *standby, *issuers;
static char hb_topic[600], promotion_topic[600];
static long timeout_ms, reconnect_ms;

/* One session per broker (two with a broker pair), each with its own network thread. */
struct link {
  const char *host;
  int port;
  struct mosquitto *m;
  int connected;
  double settled_at; /* ms, monotonic; -1: not subscribed */
};
static struct link links[2];
static int n_links = 1;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long held_epoch = 0; /* no promotion yet: the primary is active */
static char held_active[NAME_LEN + 1];
static int ever_connected = 0;
static double trusted_until = 0; /* ms, monotonic; over all brokers */

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static const char *env(const char *name, const char *fallback) {
  const char *v = getenv(name);
  if (v && *v) return v;
  if (!fallback) {
    fprintf(stderr, "app: set %s\n", name);
    exit(2);
  }
  return fallback;
}

static int is_issuer(const char *s) { /* s is one of the comma-separated SDV_ISSUERS */
  size_t n = strlen(s);
  for (const char *p = issuers; *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && n > 0 && strncmp(p, s, n) == 0) return 1;
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

static const char *str_field(const cJSON *o, const char *key) {
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(f) ? f->valuestring : NULL;
}

/* The verdict on a promotion (the rules of lib/wire/promotion_check.ts): NULL = obey. */
static const char *check(const cJSON *p, long *epoch, const char **active, const char **issuer) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "v");
  const cJSON *e = cJSON_GetObjectItemCaseSensitive(p, "epoch");
  const char *w = str_field(p, "workload");
  *active = str_field(p, "activeNode");
  *issuer = str_field(p, "issuer");
  if (!cJSON_GetObjectItemCaseSensitive(p, "issuer")) *issuer = str_field(p, "supervisor");
  if (!cJSON_IsNumber(v) || v->valuedouble != 1 || !w || !*active || !*issuer || !**issuer ||
      !cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 1 ||
      e->valuedouble > MAX_EPOCH || strlen(*active) > NAME_LEN)
    return "malformed";
  *epoch = (long)e->valuedouble;
  if (strcmp(w, workload) != 0) return "other-workload";
  if (!is_issuer(*issuer)) return "unknown-issuer";
  if (strcmp(*active, primary) != 0 && strcmp(*active, standby) != 0) return "foreign-active-node";
  if (*epoch == held_epoch && strcmp(*active, held_active) != 0) return "epoch-reused";
  if (*epoch <= held_epoch) return "stale";
  return NULL;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg) {
  (void)m, (void)ud;
  long epoch = 0;
  const char *active = NULL, *issuer = NULL, *refusal = "malformed";
  cJSON *p = NULL;
  /* an empty payload clears a retained promotion */
  if (msg->payloadlen > 0 && msg->payloadlen <= MAX_PROMOTION_BYTES)
    p = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
  pthread_mutex_lock(&lock);
  if (cJSON_IsObject(p)) refusal = check(p, &epoch, &active, &issuer);
  if (refusal && strcmp(refusal, "stale") == 0 && epoch == held_epoch) {
    /* the promotion held, again (the other broker's copy, a retained one): harmless */
    printf("promotion repeated epoch=%ld activeNode=%s\n", epoch, active);
  } else if (!refusal) {
    held_epoch = epoch;
    snprintf(held_active, sizeof held_active, "%s", active);
    printf("promotion obeyed epoch=%ld activeNode=%s issuer=%s\n", epoch, active, issuer);
  } else {
    printf("promotion ignored reason=%s epoch=%ld activeNode=%s issuer=%s\n", refusal, epoch,
           active ? active : "-", issuer ? issuer : "-");
  }
  pthread_mutex_unlock(&lock);
  fflush(stdout);
  cJSON_Delete(p);
}

static int connected_count(void) {
  int n = 0;
  for (int i = 0; i < n_links; i++) n += links[i].connected;
  return n;
}

static void on_connect(struct mosquitto *m, void *ud, int rc) {
  struct link *l = ud;
  if (rc != 0) return;
  pthread_mutex_lock(&lock);
  l->connected = 1, l->settled_at = -1, ever_connected = 1;
  printf("broker connected %s:%d connected=%d\n", l->host, l->port, connected_count());
  fflush(stdout);
  pthread_mutex_unlock(&lock);
  mosquitto_subscribe(m, NULL, promotion_topic, 1); /* clean session: on every connect */
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *qos) {
  struct link *l = ud;
  (void)m, (void)mid, (void)n, (void)qos;
  pthread_mutex_lock(&lock);
  l->settled_at = now_ms() + SETTLE_MS;
  pthread_mutex_unlock(&lock);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc) {
  struct link *l = ud;
  (void)m, (void)rc;
  pthread_mutex_lock(&lock);
  if (l->connected) {
    l->connected = 0, l->settled_at = -1;
    /* While a broker is up, the supervisor fails this instance over after timeout_ms of silence:
     * past that, this instance cannot know it is still the active one. */
    if (connected_count() == 0) trusted_until = now_ms() + timeout_ms;
    printf("broker lost %s:%d connected=%d\n", l->host, l->port, connected_count());
    fflush(stdout);
  }
  pthread_mutex_unlock(&lock);
}

/* active only while the promotion state is known: one broker subscribed and settled, or within
 * the grace after the last broker was lost */
static const char *current_role(double now, const char **why) {
  int settled = 0;
  for (int i = 0; i < n_links; i++)
    settled |= links[i].connected && links[i].settled_at >= 0 && now >= links[i].settled_at;
  if (!settled && now >= trusted_until) {
    *why = connected_count() ? "promotion-unknown" : ever_connected ? "broker-lost" : "connecting";
    return "standby";
  }
  if (settled) trusted_until = INFINITY;
  *why = "promotion";
  return strcmp(held_active, node) == 0 ? "active" : "standby";
}

static void sleep_ms(double ms) {
  struct timespec ts = {(time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6)};
  nanosleep(&ts, NULL);
}

/* Network thread: connects, reads (promotions), writes (heartbeats queued by the work loop) and
 * reconnects every reconnect_ms. (mosquitto_loop_start reconnects at most once a second.) */
static void *network(void *arg) {
  struct link *l = arg;
  int rc = mosquitto_connect(l->m, l->host, l->port, 5);
  for (;;) {
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_loop(l->m, 100, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      sleep_ms(reconnect_ms);
      rc = mosquitto_reconnect(l->m);
    }
  }
  return NULL;
}

int main(void) {
  workload = env("SDV_WORKLOAD", NULL), node = env("SDV_NODE", NULL);
  primary = env("SDV_PRIMARY_NODE", NULL), standby = env("SDV_STANDBY_NODE", NULL);
  issuers = env("SDV_ISSUERS", "supervisor");
  const char *prefix = env("SDV_TOPIC_PREFIX", "sdv");
  long period_ms = atol(env("SDV_HEARTBEAT_PERIOD_MS", "33"));
  timeout_ms = atol(env("SDV_APP_TIMEOUT_MS", "300"));
  reconnect_ms = atol(env("SDV_RECONNECT_PERIOD_MS", "100"));
  links[0].host = env("SDV_BROKER_HOST", "127.0.0.1");
  links[0].port = atoi(env("SDV_BROKER_PORT", "1883"));
  if (getenv("SDV_BROKER2_HOST") && *getenv("SDV_BROKER2_HOST")) {
    links[1].host = getenv("SDV_BROKER2_HOST");
    links[1].port = atoi(env("SDV_BROKER2_PORT", "1883"));
    n_links = 2;
  }
  snprintf(held_active, sizeof held_active, "%s", primary);
  snprintf(hb_topic, sizeof hb_topic, "%s/app/%s/%s/hb", prefix, workload, node);
  snprintf(promotion_topic, sizeof promotion_topic, "%s/workload/%s/promotion", prefix, workload);

  char client_id[600];
  snprintf(client_id, sizeof client_id, "app:%s:%s", workload, node);
  mosquitto_lib_init();
  for (int i = 0; i < n_links; i++) { /* clean sessions, the same client id on each broker */
    struct mosquitto *m = links[i].m = mosquitto_new(client_id, true, &links[i]);
    links[i].settled_at = -1;
    if (!m) return 1;
    if (getenv("SDV_TLS_CA") &&
        mosquitto_tls_set(m, getenv("SDV_TLS_CA"), NULL, getenv("SDV_TLS_CERT"),
                          getenv("SDV_TLS_KEY"), NULL) != MOSQ_ERR_SUCCESS)
      return 2;
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    mosquitto_disconnect_callback_set(m, on_disconnect);
    mosquitto_threaded_set(m, true); /* the work loop publishes, the network thread reads */
    pthread_t net;
    pthread_create(&net, NULL, network, &links[i]);
  }

  unsigned long seq = 0;
  char last[NAME_LEN + 64] = "", payload[32];
  double next_beat = now_ms();
  for (;;) { /* the app's work loop: do one period of work, then heartbeat */
    /* ... the application's real work for this period goes here; act on the output only when
     * the role is active (a standby computes, but does not actuate) ... */
    const char *why, *role;
    char state[sizeof last];
    pthread_mutex_lock(&lock);
    role = current_role(now_ms(), &why);
    snprintf(state, sizeof state, "%s %ld %s", role, held_epoch, held_active);
    if (strcmp(state, last) != 0) {
      printf("role=%s epoch=%ld activeNode=%s why=%s\n", role, held_epoch, held_active, why);
      fflush(stdout);
      memcpy(last, state, sizeof last);
    }
    pthread_mutex_unlock(&lock);
    int n = snprintf(payload, sizeof payload, "{\"seq\":%lu}", ++seq);
    for (int i = 0; i < n_links; i++) /* to every broker; fails while that one is offline: fine */
      mosquitto_publish(links[i].m, NULL, hb_topic, n, payload, 0, false);
    next_beat += period_ms;
    double wait = next_beat - now_ms();
    if (wait > 0) {
      sleep_ms(wait);
    } else if (-wait > period_ms) {
      next_beat = now_ms(); /* after a stall: no burst of catch-up heartbeats */
    }
  }
}
