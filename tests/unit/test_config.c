/* test_config.c - the config store (util/config.h) and the log and warning
 * sinks (util/log.h) that the layers below the ABI layer use.
 *
 * Real files in the test's directory: the parsing rules of the config file
 * (comments, quotes, blanks, lines without '=', case, the first of a
 * repeated key), the typed getters with their fallbacks, a missing file,
 * clear and reload, each sink getting only its own level, and readers on
 * other threads while the store is loaded and cleared over and over. */
#include "test_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/log.h"

/* ---- sinks that keep what they get ---------------------------------------- */

#define MAX_LINES 16

static struct {
    char log[MAX_LINES][2100], warn[MAX_LINES][2100];
    int nlog, nwarn;
} got;

static void keep_log(const char *line)
{
    if (got.nlog < MAX_LINES)
        snprintf(got.log[got.nlog], sizeof got.log[0], "%s", line);
    got.nlog++;
}

static void keep_warn(const char *line)
{
    if (got.nwarn < MAX_LINES)
        snprintf(got.warn[got.nwarn], sizeof got.warn[0], "%s", line);
    got.nwarn++;
}

static int setup(void **state)
{
    memset(&got, 0, sizeof got);
    vd_log_set_sink(keep_log);
    vd_warn_set_sink(keep_warn);
    return tu_setup(state);
}

static int teardown(void **state)
{
    vd_config_clear();
    vd_log_set_sink(NULL);
    vd_warn_set_sink(NULL);
    return tu_teardown(state);
}

static const char *write_conf(const char *name, const char *text)
{
    const char *p = tu_path(name);
    tu_write_all(p, text, strlen(text));
    return p;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_parse(void **state)
{
    (void)state;
    const char *p = write_conf("a.conf",
                               "# a comment\n"
                               "   key.One = \"quoted value\"   \n"
                               "Key.Two=bare value, spaces kept inside\n"
                               "a line without an equals sign\n"
                               "\n"
                               "   # an indented comment = not a key\n"
                               "empty =\n"
                               "quote.only = \"\n"
                               "inner = a \"b\" c\n"
                               "dup = first\n"
                               "DUP = second\n"
                               "path = /a=b/c\n");
    TU_OK(vd_config_load(p));

    assert_string_equal(vd_config_get("KEY.ONE"), "quoted value");
    assert_string_equal(vd_config_get("key.two"), "bare value, spaces kept inside");
    assert_string_equal(vd_config_get("empty"), "");
    assert_string_equal(vd_config_get("quote.only"), "\"");
    assert_string_equal(vd_config_get("inner"), "a \"b\" c");
    assert_string_equal(vd_config_get("Dup"), "first");
    assert_string_equal(vd_config_get("path"), "/a=b/c");
    assert_null(vd_config_get("# an indented comment"));
    assert_null(vd_config_get("not.set"));

    /* One log line, naming the file and the line; no warning. */
    char want[1200];
    snprintf(want, sizeof want, "config %s:4: ignoring line without '='", p);
    assert_int_equal(got.nlog, 1);
    assert_string_equal(got.log[0], want);
    assert_int_equal(got.nwarn, 0);
}

static void test_numbers(void **state)
{
    (void)state;
    TU_OK(vd_config_load(write_conf("n.conf",
                                    "n.plain = 42\n"
                                    "n.neg = \"-7\"\n"
                                    "n.junk = 12abc\n"
                                    "n.hex = 0x10\n"
                                    "n.empty = \"\"\n"
                                    "t.zero = 0\n"
                                    "t.neg = -3\n"
                                    "t.vddk = 500\n"
                                    "t.ours = 250\n"
                                    "t.huge = 99999999\n"
                                    "b.0 = 0\n"
                                    "b.false = FALSE\n"
                                    "b.no = No\n"
                                    "b.yes = yes\n"
                                    "b.two = 2\n"
                                    "b.off = off\n"
                                    "b.empty =\n")));

    assert_int_equal(vd_config_long("n.plain", -1), 42);
    assert_int_equal(vd_config_long("N.NEG", -1), -7);
    assert_int_equal(vd_config_long("n.junk", -1), -1);
    assert_int_equal(vd_config_long("n.hex", -1), -1);
    assert_int_equal(vd_config_long("n.empty", 9), 9);
    assert_int_equal(vd_config_long("n.unset", 9), 9);

    /* Ours when above 0, else VDDK's when above 0, else the default; all
     * capped at an hour. */
    assert_int_equal(vd_config_ms("t.ours", "t.vddk", 1000), 250);
    assert_int_equal(vd_config_ms("t.zero", "t.vddk", 1000), 500);
    assert_int_equal(vd_config_ms("t.neg", "t.vddk", 1000), 500);
    assert_int_equal(vd_config_ms("t.unset", "t.vddk", 1000), 500);
    assert_int_equal(vd_config_ms("t.zero", "t.neg", 1000), 1000);
    assert_int_equal(vd_config_ms("t.zero", NULL, 1000), 1000);
    assert_int_equal(vd_config_ms("t.huge", NULL, 1000), 3600000);
    assert_int_equal(vd_config_ms("t.unset", "t.huge", 1000), 3600000);
    assert_int_equal(vd_config_ms("t.unset", NULL, 7200000), 3600000);

    assert_int_equal(vd_config_bool("b.0", 1), 0);
    assert_int_equal(vd_config_bool("b.false", 1), 0);
    assert_int_equal(vd_config_bool("b.no", 1), 0);
    assert_int_equal(vd_config_bool("b.yes", 0), 1);
    assert_int_equal(vd_config_bool("b.two", 0), 1);
    assert_int_equal(vd_config_bool("b.off", 0), 1);
    assert_int_equal(vd_config_bool("b.empty", 0), 0);
    assert_int_equal(vd_config_bool("b.empty", 1), 1);
    assert_int_equal(vd_config_bool("b.unset", 1), 1);
    assert_int_equal(got.nlog + got.nwarn, 0);
}

static void test_missing_file(void **state)
{
    (void)state;
    TU_OK(vd_config_load(write_conf("ok.conf", "k = v\n")));
    const char *missing = tu_path("no-such.conf");
    TU_ERR(vd_config_load(missing), VD_E_NOTFOUND);
    TU_MSG_HAS(missing);
    /* What was loaded stays. */
    assert_string_equal(vd_config_get("k"), "v");
}

static void test_clear_and_reload(void **state)
{
    (void)state;
    const char *a = write_conf("a.conf", "shared = from a\nonly.a = 1\n");
    const char *b = write_conf("b.conf", "shared = from b\nonly.b = 2\n");
    TU_OK(vd_config_load(a));
    vd_config_clear();
    assert_null(vd_config_get("shared"));
    assert_null(vd_config_get("only.a"));
    vd_config_clear();                      /* twice is harmless */

    TU_OK(vd_config_load(b));
    assert_string_equal(vd_config_get("shared"), "from b");
    assert_null(vd_config_get("only.a"));

    /* A second load adds to the store; the first value of a key wins. */
    const char *held = vd_config_get("only.b");
    TU_OK(vd_config_load(a));
    assert_string_equal(vd_config_get("shared"), "from b");
    assert_string_equal(vd_config_get("only.a"), "1");
    assert_ptr_equal(vd_config_get("only.b"), held);   /* not moved by the load */
    assert_string_equal(held, "2");
}

static void test_sinks(void **state)
{
    (void)state;
    vd_log("a log line %d", 1);
    vd_warn("a warning %s", "two");
    assert_int_equal(got.nlog, 1);
    assert_int_equal(got.nwarn, 1);
    assert_string_equal(got.log[0], "a log line 1");
    assert_string_equal(got.warn[0], "a warning two");

    /* Long lines are cut at 2047 bytes, as the ABI layer cuts its own. */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    vd_warn("%s", big);
    assert_int_equal(got.nwarn, 2);
    assert_int_equal(strlen(got.warn[1]), 2047);

    /* Without a sink, lines of that level are dropped; the other stays. */
    vd_warn_set_sink(NULL);
    vd_warn("dropped");
    vd_log("kept");
    assert_int_equal(got.nwarn, 2);
    assert_int_equal(got.nlog, 2);
    assert_string_equal(got.log[1], "kept");
    vd_log_set_sink(NULL);
    vd_log("dropped too");
    assert_int_equal(got.nlog, 2);
}

/* Readers on other threads while the main thread loads and clears the
 * store: each answer is either the file's value or the default. */
#define READERS 3
#define ROUNDS 300
#define READS 20000

static atomic_int bad;

static void *reader(void *arg)
{
    (void)arg;
    for (int i = 0; i < READS; i++) {
        long n = vd_config_long("race.number", -1);
        int ms = vd_config_ms("race.none", "race.ms", 1);
        int b = vd_config_bool("race.flag", 1);
        if ((n != 4242 && n != -1) || (ms != 777 && ms != 1) || (b != 0 && b != 1))
            atomic_fetch_add(&bad, 1);
    }
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    /* Forty keys before the ones read, so that each lookup walks a while. */
    char text[4096] = "";
    for (int i = 0; i < 40; i++) {
        char line[64];
        snprintf(line, sizeof line, "pad.%d = %d\n", i, i);
        strcat(text, line);
    }
    strcat(text, "race.number = 4242\nrace.ms = 777\nrace.flag = no\n");
    const char *p = write_conf("race.conf", text);

    atomic_store(&bad, 0);
    pthread_t t[READERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, reader, NULL), 0);
    for (int r = 0; r < ROUNDS; r++) {
        TU_OK(vd_config_load(p));
        vd_config_clear();
    }
    for (int i = 0; i < READERS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&bad), 0);

    TU_OK(vd_config_load(p));
    assert_int_equal(vd_config_long("race.number", -1), 4242);
    assert_int_equal(vd_config_ms("race.none", "race.ms", 1), 777);
    assert_int_equal(vd_config_bool("race.flag", 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clear_and_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
