/*
 * Unit tests for statement_text_normalize(): which texts are one statement
 * and which are not, chunking, and that no input reads or writes out of
 * bounds (random texts, also under ASan/UBSan).  TAP output.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/statement_text.h"

static int	tests_run = 0;
static int	tests_failed = 0;

typedef struct Collected
{
	char	   *text;
	int			len;
	int			cap;
	int			chunks;
	bool		chunk_too_long;
	bool		empty_chunk;
} Collected;

static void
collect(void *arg, const char *chunk, int len)
{
	Collected  *c = arg;

	if (len > STATEMENT_TEXT_CHUNK)
		c->chunk_too_long = true;
	if (len <= 0)
		c->empty_chunk = true;
	if (c->len + len + 1 > c->cap)
	{
		c->cap = (c->len + len + 1) * 2;
		c->text = realloc(c->text, c->cap);
	}
	memcpy(c->text + c->len, chunk, len);
	c->len += len;
	c->text[c->len] = '\0';
	c->chunks++;
}

static Collected
normalize(const char *text, int len)
{
	Collected	c = {malloc(1), 0, 1, 0, false, false};

	c.text[0] = '\0';
	statement_text_normalize(text, len, collect, &c);
	return c;
}

static void
ok(bool pass, const char *what, const char *got)
{
	tests_run++;
	if (!pass)
		tests_failed++;
	printf("%sok %d - %s%s%s%s\n", pass ? "" : "not ", tests_run, what,
		   got ? " (got \"" : "", got ? got : "", got ? "\")" : "");
}

static void
expect(const char *text, const char *want, const char *what)
{
	Collected	c = normalize(text, (int) strlen(text));

	ok(strcmp(c.text, want) == 0 && !c.chunk_too_long && !c.empty_chunk,
	   what, c.text);
	free(c.text);
}

static void
same(const char *a, const char *b, bool want_same, const char *what)
{
	Collected	x = normalize(a, (int) strlen(a));
	Collected	y = normalize(b, (int) strlen(b));

	ok((strcmp(x.text, y.text) == 0) == want_same, what, want_same ? x.text : y.text);
	free(x.text);
	free(y.text);
}

int
main(void)
{
	static char big[8192];
	static char want[8192];
	Collected	c;
	int			n;

	/* Coder's publish, and pgbench's form of it */
	expect("select pg_notify('workspace_owner:6f1c2a4e-0b1d-4c8e-9f3a-1b2c3d4e5f60', $1)",
		   "select pg_notify(?s,$1)", "Coder's publish: the channel constant goes");
	expect("SELECT pg_notify('workspace_owner:' || $1, '{\"kind\":\"workspace_update\"}');",
		   "select pg_notify(?s||$1,?s)", "strings, parameters, operators, the semicolon");
	same("select pg_notify('workspace_owner:1', $1)",
		 "SELECT   pg_notify( 'agent-logs:2' ,$1 ) ;", true,
		 "case of keywords, spacing and constants do not matter");
	same("SELECT * FROM t WHERE id = $1", "SELECT * FROM t WHERE id = 7", false,
		 "a parameter is not a constant (as in core)");
	same("SELECT * FROM t WHERE id = $1", "SELECT * FROM t WHERE id = $2", false,
		 "different parameters are different statements");

	/* numbers by the type the parser gives them */
	expect("SELECT 1, 2147483647, 2147483648, 9223372036854775807, 9223372036854775808",
		   "select ?i,?i,?l,?l,?n", "integers: int4, int8, numeric by value");
	expect("SELECT 1.5, .5, 1e10, 2E-3, 3.e4", "select ?n,?n,?n,?n,?n",
		   "points and exponents are numeric");
	expect("SELECT 0x1F, 0o17, 0b101, 1_000", "select ?x,?x,?x,?x",
		   "hex, octal, binary and underscores (16+)");
	same("SELECT f(1)", "SELECT f(10000000000)", false,
		 "int4 and int8 constants stay apart (they may pick different functions)");
	same("SELECT f(1)", "SELECT f('1')", false, "a number is not a string");
	expect("SELECT t1.c2, a.b FROM t1", "select t1.c2,a.b from t1",
		   "digits inside identifiers are kept");
	expect("SELECT x FROM t LIMIT 10 OFFSET 20", "select x from t limit ?i offset ?i",
		   "a space separates words from constants");

	/* strings */
	expect("SELECT 'it''s', E'it\\'s', 'a\\', 'b'", "select ?s,e?s,?s,?s",
		   "quotes doubled, backslash escapes in E strings only");
	expect("SELECT $$a 'b' $c$$, $fn$x$$y$fn$, a$b, $", "select ?s,?s,a$b,$",
		   "dollar quoting, $ inside identifiers, a lone $");
	expect("SELECT interval '1 day', B'0101', X'ff', U&'d\\0061t'",
		   "select interval ?s,b?s,x?s,u&?s", "typed and prefixed strings");
	expect("SELECT \"MyTable\".\"a\"\"b\" FROM \"MyTable\"",
		   "select \"MyTable\".\"a\"\"b\" from \"MyTable\"",
		   "quoted identifiers keep case and doubled quotes");
	same("SELECT \"Id\" FROM t", "SELECT \"id\" FROM t", false,
		 "quoted identifiers are case sensitive");
	same("SELECT Id FROM T", "select id from t", true,
		 "unquoted identifiers are folded to lower case");

	/* comments and spacing */
	expect("-- name: GetUserByID :one\nSELECT /* a /* nested */ comment */ id\n\tFROM users WHERE id = $1;\n",
		   "select id from users where id=$1", "line, nested block comments, whitespace");
	same("SELECT a-b", "SELECT a - b", true, "spacing around operators does not matter");
	same("SELECT a b", "SELECT ab", false, "a space between two words does");
	same("INSERT INTO t VALUES (1) \\;  UPDATE t SET x = 2", "INSERT INTO t VALUES (1)", false,
		 "the whole text is normalized (the caller cuts statements)");

	/* malformed text runs to the end and never reads past it */
	expect("SELECT 'abc", "select ?s", "an unterminated string");
	expect("SELECT E'abc\\", "select e?s", "an unterminated escape");
	expect("SELECT /* abc", "select", "an unterminated comment");
	expect("SELECT $tag$abc", "select ?s", "an unterminated dollar string");
	expect("SELECT \"abc", "select \"abc\"", "an unterminated quoted identifier");
	expect("SELECT 1e", "select ?ie", "an exponent without digits");
	expect("", "", "empty text");
	expect("  ;  -- only a comment", "", "nothing but spacing");

	/* multibyte characters are identifier bytes */
	expect("SELECT \xc3\xa9t\xc3\xa9, 'caf\xc3\xa9' FROM t",
		   "select \xc3\xa9t\xc3\xa9,?s from t", "UTF-8 identifiers and strings");

	/*
	 * Words are copied lower-cased eight bytes at a time: every byte a word
	 * can hold, at every position of an 8-byte step, and words ending at
	 * every distance from the end of the text.
	 */
	expect("SELECT ABCDEFGHIJKLMNOPQRSTUVWXYZ_@[`{ abcdefghijklmnopqrstuvwxyz$09",
		   "select abcdefghijklmnopqrstuvwxyz_@[`{abcdefghijklmnopqrstuvwxyz$09",
		   "words fold A-Z only ('@', '[', '`', '{' are not letters)");
	{
		static const char word[] = "AbCdEfGhIjKlMnOpQrStUvWxYz\xc3\x89Z";
		static const char folded[] = "abcdefghijklmnopqrstuvwxyz\xc3\x89z";
		bool		all = true;

		for (int wl = 1; wl < (int) sizeof(word); wl++)
			for (int tail = 0; tail < 10; tail++)
			{
				char		text[128];
				char		expected[128];
				Collected	r;

				/* "X <word prefix> ,,,,": the word ends tail bytes before the end */
				n = sprintf(text, "X %.*s%.*s", wl, word, tail, ",,,,,,,,,,");
				sprintf(expected, "x %.*s%.*s", wl, folded, tail, ",,,,,,,,,,");
				r = normalize(text, n);
				if (strcmp(r.text, expected) != 0)
				{
					all = false;
					ok(false, "a word of every length at every distance from the end", r.text);
				}
				free(r.text);
			}
		ok(all, "words of 1 to 29 bytes at 0 to 9 bytes from the end fold exactly", NULL);
	}

	/* long statements are handed over in chunks, in order */
	n = 0;
	memcpy(big, "SELECT ", 7);
	n = 7;
	while (n < (int) sizeof(big) - 16)
		n += sprintf(big + n, "col%d, ", n);
	memcpy(big + n, "1", 2);
	c = normalize(big, (int) strlen(big));
	{
		int			w = 0;
		const char *p = big;

		/* expected: lower-cased, ", " -> ",", "1" -> "?i" */
		while (*p)
		{
			if (p[0] == ',' && p[1] == ' ')
			{
				want[w++] = ',';
				p += 2;
			}
			else if (p[0] == '1' && p[1] == '\0')
			{
				want[w++] = '?';
				want[w++] = 'i';
				p++;
			}
			else if (p[0] == 'S' || p[0] == 'E' || p[0] == 'L' || p[0] == 'C' || p[0] == 'T')
				want[w++] = (char) (*p++ + ('a' - 'A'));
			else
				want[w++] = *p++;
		}
		want[w] = '\0';
	}
	ok(strcmp(c.text, want) == 0, "an 8 kB statement normalizes whole", NULL);
	ok(c.chunks == (c.len + STATEMENT_TEXT_CHUNK - 1) / STATEMENT_TEXT_CHUNK &&
	   !c.chunk_too_long && !c.empty_chunk, "in full chunks of 1024 bytes and a last one", NULL);
	free(c.text);

	/* random texts of the characters that steer the lexer */
	{
		static const char alphabet[] = "ab1$'\"-/*;. \n\\Ee0x_9";
		bool		stable = true;
		bool		bounded = true;

		srand(42);
		for (int round = 0; round < 200000; round++)
		{
			int			len = rand() % 64;
			char	   *text = malloc(len > 0 ? len : 1);
			Collected	a,
						b;

			for (int k = 0; k < len; k++)
				text[k] = alphabet[rand() % (int) (sizeof(alphabet) - 1)];
			a = normalize(text, len);
			b = normalize(text, len);
			if (a.len != b.len || memcmp(a.text, b.text, a.len) != 0)
				stable = false;
			if (a.chunk_too_long || a.empty_chunk || a.len > 2 * len + 2)
				bounded = false;
			free(a.text);
			free(b.text);
			free(text);
		}
		ok(stable, "200,000 random texts: the same text normalizes the same way", NULL);
		ok(bounded, "200,000 random texts: output bounded, chunks well-formed", NULL);
	}

	/* the text shown in the views: case and order kept, constants '?' */
	{
		static const struct
		{
			const char *in;
			const char *want;
		}			shown[] = {
			{"-- name: GetWorkspaceByID :one\nSELECT id, name\n  FROM workspaces\n WHERE id = $1 AND deleted = false LIMIT 1;",
			 "SELECT id, name FROM workspaces WHERE id = $1 AND deleted = false LIMIT ?"},
			{"SELECT pg_notify('workspace_owner:6f1c2d3e-0000-4000-8000-000000000001', $1)",
			 "SELECT pg_notify(?, $1)"},
			{"select  'it''s a secret', E'\\'also\\'', $tag$secret$tag$, B'0101', X'ff', 3.14e-2 /* c */ ;",
			 "select ?, ?, ?, ?, ?, ?"},
			{"SELECT \"Quoted \"\"Name\"\"\" FROM t WHERE a = -42::int8",
			 "SELECT \"Quoted \"\"Name\"\"\" FROM t WHERE a = -?::int8"},
			{"  \n\t ", ""},
			{"UPDATE t SET v = 'unterminated secret", "UPDATE t SET v = ?"},
		};

		for (int k = 0; k < (int) (sizeof(shown) / sizeof(shown[0])); k++)
		{
			char		out[256];
			bool		truncated = true;

			statement_text_display(shown[k].in, (int) strlen(shown[k].in), out,
								   sizeof(out), &truncated);
			ok(strcmp(out, shown[k].want) == 0 && !truncated, "shown text", out);
		}
	}
	{
		/* bounded: a long text is cut at outsize - 1 bytes and says so */
		const char *in = "SELECT aaaaaaaaaa, bbbbbbbbbb, 'secret constant' FROM t";
		char		out[16];
		bool		truncated = false;
		int			n = statement_text_display(in, (int) strlen(in), out, sizeof(out), &truncated);

		ok(n == 15 && truncated && strcmp(out, "SELECT aaaaaaaa") == 0,
		   "a shown text is cut at its bound", out);
		n = statement_text_display("x = 'secret constant'", 21, out, 6, &truncated);
		ok(n <= 5 && strstr(out, "sec") == NULL, "a cut never shows part of a constant", out);
	}
	{
		/* random texts: bounded, NUL-terminated, no quote char of a constant */
		static const char alphabet[] = "ab1$'\"-/*;. \n\\Ee0x_9";
		bool		bounded = true;

		srand(7);
		for (int round = 0; round < 200000; round++)
		{
			int			len = rand() % 64;
			char		text[64];
			char		out[24];
			bool		truncated;
			int			n;

			for (int k = 0; k < len; k++)
				text[k] = alphabet[rand() % (int) (sizeof(alphabet) - 1)];
			n = statement_text_display(text, len, out, 1 + rand() % (int) sizeof(out), &truncated);
			if (n < 0 || n >= (int) sizeof(out) || out[n] != '\0' || (int) strlen(out) != n)
				bounded = false;
		}
		ok(bounded, "200,000 random texts: shown text bounded and terminated", NULL);
	}

	printf("1..%d\n", tests_run);
	if (tests_failed)
		fprintf(stderr, "%d of %d statement text tests failed\n", tests_failed, tests_run);
	return tests_failed ? 1 : 0;
}
