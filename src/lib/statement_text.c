/*-------------------------------------------------------------------------
 *
 * statement_text.c
 *	  Normalizing a statement's text for statement ids (statement_text.h).
 *
 * PostgreSQL's own query ids hash the analyzed parse tree, which costs more
 * than parsing a short statement (about 1,800 instructions for Coder's
 * SELECT pg_notify(...), 2,800 for pgbench's SELECT by primary key).  The
 * text the client sent identifies the statement as well for generated SQL
 * (sqlc's, Coder's): the same text, with the constants taken out so that
 * `pg_notify('workspace_owner:6f1c..', $1)` for every workspace is one
 * statement.  This is a lexer in one pass, not a parser: it knows strings,
 * numbers, quoted identifiers, parameters, comments and spacing, and
 * nothing of the grammar.
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "statement_text.h"

#define C_SPACE 0x01			/* what the lexer skips */
#define C_WORD 0x02				/* starts an identifier or keyword */
#define C_DIGIT 0x04
#define C_CONT 0x08				/* continues one: words, digits, '$' */
#define C_UPPER 0x10			/* A-Z: C_UPPER << 1 is what makes them a-z */

/*
 * Letters, '_' and every byte of a multibyte character are C_WORD | C_CONT;
 * a full table, so the hot loops test a byte with one load.
 */
static const unsigned char char_class[256] = {
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  1,  1,  1,  1,  1,  0,  0,	/* 0x00 */
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,	/* 0x10 */
	 1,  0,  0,  0,  8,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,	/* 0x20 */
	12, 12, 12, 12, 12, 12, 12, 12, 12, 12,  0,  0,  0,  0,  0,  0,	/* 0x30 */
	 0, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,	/* 0x40 */
	26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26,  0,  0,  0,  0, 10,	/* 0x50 */
	 0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0x60 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,  0,  0,  0,  0,  0,	/* 0x70 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0x80 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0x90 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0xA0 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0xB0 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0xC0 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0xD0 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0xE0 */
	10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10,	/* 0xF0 */
};

/* bytes as the lexer folds them: A-Z to a-z, everything else as it is */
static const unsigned char lower[256] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,	/* 0x00 */
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,	/* 0x10 */
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,	/* 0x20 */
	0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f,	/* 0x30 */
	0x40, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,	/* 0x40 */
	0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,	/* 0x50 */
	0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,	/* 0x60 */
	0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,	/* 0x70 */
	0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,	/* 0x80 */
	0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,	/* 0x90 */
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,	/* 0xA0 */
	0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,	/* 0xB0 */
	0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf,	/* 0xC0 */
	0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,	/* 0xD0 */
	0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,	/* 0xE0 */
	0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,	/* 0xF0 */
};

/*
 * Eight bytes lower-cased at once: 0x20 added to each byte in 'A'..'Z'.
 * Each byte's low seven bits plus a constant sets its high bit exactly when
 * the byte is >= 'A' (resp. > 'Z'), without a carry into the next byte;
 * bytes with the high bit set (multibyte characters) stay as they are.
 */
static inline uint64_t
lower8(uint64_t x)
{
	const uint64_t low7 = UINT64_C(0x7f7f7f7f7f7f7f7f);
	const uint64_t high = UINT64_C(0x8080808080808080);
	uint64_t	heptets = x & low7;
	uint64_t	ge_a = heptets + UINT64_C(0x3f3f3f3f3f3f3f3f);
	uint64_t	gt_z = heptets + UINT64_C(0x2525252525252525);

	return x | (((ge_a & ~gt_z & ~x) & high) >> 2);
}

_Static_assert(STATEMENT_TEXT_CHUNK % 8 == 0, "a chunk ends readable to a whole word");

typedef struct Out
{
	/* first, so that it is aligned: hash functions read words faster */
	char		buf[STATEMENT_TEXT_CHUNK];
	int			n;
	statement_text_sink sink;
	void	   *arg;
} Out;

/*
 * The normalized text goes out in chunks of exactly STATEMENT_TEXT_CHUNK
 * bytes (and a last, shorter one), however it was written: the caller's
 * hash depends on where the chunks end.
 */
static inline void
flush_if_full(Out *o)
{
	if (o->n == STATEMENT_TEXT_CHUNK)
	{
		o->sink(o->arg, o->buf, o->n);
		o->n = 0;
	}
}

static inline void
put(Out *o, char c)
{
	o->buf[o->n++] = c;
	flush_if_full(o);
}

/* n bytes as they are */
static void
put_bytes(Out *o, const unsigned char *p, int n)
{
	while (n-- > 0)
		put(o, (char) *p++);
}

static inline bool
is_digit(unsigned char c)
{
	return (char_class[c] & C_DIGIT) != 0;
}

/* s[i] is the opening quote; the index after the closing one */
static int
skip_string(const unsigned char *s, int i, int len, bool backslash_escapes)
{
	for (i++; i < len; i++)
	{
		if (!backslash_escapes)
		{
			/* most strings: straight to the next quote */
			const unsigned char *q = memchr(s + i, '\'', len - i);

			if (q == NULL)
				return len;
			i = (int) (q - s);
		}
		if (s[i] == '\\' && backslash_escapes)
			i++;				/* the escaped byte, whatever it is */
		else if (s[i] == '\'')
		{
			if (i + 1 < len && s[i + 1] == '\'')
				i++;			/* '' is a quote inside the string */
			else
				return i + 1;
		}
	}
	return len;
}

/* s[i .. i+2) is slash-star; comments nest in SQL */
static int
skip_block_comment(const unsigned char *s, int i, int len)
{
	int			depth = 0;

	while (i + 1 < len)
	{
		if (s[i] == '/' && s[i + 1] == '*')
		{
			depth++;
			i += 2;
		}
		else if (s[i] == '*' && s[i + 1] == '/')
		{
			i += 2;
			if (--depth == 0)
				return i;
		}
		else
			i++;
	}
	return len;
}

/*
 * s[i] is '$' not followed by a digit.  A dollar-quoted string
 * ($$..$$, $tag$..$tag$): the index after it, or -1 when this '$' does not
 * start one.
 */
static int
skip_dollar_string(const unsigned char *s, int i, int len)
{
	int			tag_end = i + 1;
	int			taglen;

	while (tag_end < len && (char_class[s[tag_end]] & (C_WORD | C_DIGIT)))
		tag_end++;
	if (tag_end >= len || s[tag_end] != '$')
		return -1;
	taglen = tag_end - i + 1;
	for (int j = tag_end + 1; j + taglen <= len; j++)
		if (s[j] == '$' && memcmp(s + j, s + i, taglen) == 0)
			return j + taglen;
	return len;
}

/*
 * s[i] starts a number; the index after it, and its type letter in *type:
 * what the parser would make of it (int4, int8, numeric), so that f(1) and
 * f(10000000000) stay apart when they resolve to different functions.
 */
static int
skip_number(const unsigned char *s, int i, int len, char *type)
{
	int			start = i;
	bool		integer = true;
	bool		underscore = false;
	int			ndigits;

	if (s[i] == '0' && i + 2 < len && strchr("xXoObB", s[i + 1]) != NULL &&
		(char_class[s[i + 2]] & (C_WORD | C_DIGIT)))
	{
		for (i += 2; i < len && (char_class[s[i]] & (C_WORD | C_DIGIT)); i++)
			;
		*type = 'x';
		return i;
	}
	/* digits, and '_' between them (16+), noted as they are scanned */
	for (; i < len; i++)
	{
		if (is_digit(s[i]))
			continue;
		if (s[i] != '_')
			break;
		underscore = true;
	}
	if (i < len && s[i] == '.' && !(i + 1 < len && s[i + 1] == '.'))
	{
		integer = false;
		for (i++; i < len; i++)
		{
			if (is_digit(s[i]))
				continue;
			if (s[i] != '_')
				break;
			underscore = true;
		}
	}
	if (i + 1 < len && (s[i] == 'e' || s[i] == 'E'))
	{
		int			j = i + 1;

		if (j < len && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < len && is_digit(s[j]))
		{
			integer = false;
			for (i = j; i < len && is_digit(s[i]); i++)
				;
		}
	}
	if (underscore)
		*type = 'x';
	else if (!integer)
		*type = 'n';
	else
	{
		ndigits = i - start;
		if (ndigits < 10 ||
			(ndigits == 10 && memcmp(s + start, "2147483647", 10) <= 0))
			*type = 'i';
		else if (ndigits < 19 ||
				 (ndigits == 19 &&
				  memcmp(s + start, "9223372036854775807", 19) <= 0))
			*type = 'l';
		else
			*type = 'n';
	}
	return i;
}

static inline void
put_constant(Out *o, char type)
{
	put(o, '?');
	put(o, type);
}

void
statement_text_normalize(const char *src, int len, statement_text_sink sink,
						 void *arg)
{
	const unsigned char *s = (const unsigned char *) src;
	Out			o;
	int			i = 0;
	bool		gap = false;	/* whitespace or a comment since the last token */
	bool		after_word = false; /* the last token was a word or constant */

	o.sink = sink;
	o.arg = arg;
	o.n = 0;

	while (i < len)
	{
		unsigned char c = s[i];
		unsigned char cls = char_class[c];
		int			start = i;
		int			next;
		char		type;

		if (cls & C_SPACE)
		{
			gap = true;
			i++;
			continue;
		}
		/* words, numbers and constants are kept apart by one space */
		if (gap && after_word &&
			((cls & (C_WORD | C_DIGIT)) || c == '\'' || c == '"' || c == '$' ||
			 (c == '.' && i + 1 < len && is_digit(s[i + 1]))))
			put(&o, ' ');
		gap = false;

		if (cls & C_WORD)
		{
			/*
			 * Copied lower-cased (the lexer folds words) as it is scanned;
			 * the count in a local, which a char store cannot alias.
			 */
			int			n = o.n;

			if (n + (len - i) + 8 <= STATEMENT_TEXT_CHUNK)
			{
				/*
				 * The rest of the text fits in the chunk, with a word to
				 * spare, so this word does: find its end, then copy it
				 * lower-cased eight bytes at a time while the text has
				 * eight more (bytes past its end are overwritten later or
				 * lie past the chunk's end).
				 */
				const unsigned char *p = s + i + 1;
				const unsigned char *stop = s + len;
				int			end;

				while (p < stop && (char_class[*p] & C_CONT))
					p++;
				end = (int) (p - s);
				for (; i + 8 <= len && i < end; i += 8, n += 8)
				{
					uint64_t	w;

					memcpy(&w, s + i, 8);
					w = lower8(w);
					memcpy(o.buf + n, &w, 8);
				}
				for (; i < end; i++, n++)
					o.buf[n] = (char) lower[s[i]];
				/* the last step may have gone past the word's end */
				n -= i - end;
				i = end;
				o.n = n;
				c = s[start];
				if (i - start == 1 && (c == 'e' || c == 'E') && i < len && s[i] == '\'')
				{
					i = skip_string(s, i, len, true);
					put_constant(&o, 's');
				}
				after_word = true;
				continue;
			}
			for (;;)
			{
				o.buf[n++] = (char) (c | ((cls & C_UPPER) << 1));
				if (n == STATEMENT_TEXT_CHUNK)
				{
					o.n = n;
					flush_if_full(&o);
					n = 0;
				}
				if (++i >= len)
					break;
				c = s[i];
				cls = char_class[c];
				if (!(cls & C_CONT))
					break;
			}
			o.n = n;
			c = s[start];
			/* E'..': a string with backslash escapes */
			if (i - start == 1 && (c == 'e' || c == 'E') && i < len && s[i] == '\'')
			{
				i = skip_string(s, i, len, true);
				put_constant(&o, 's');
			}
			after_word = true;
			continue;
		}
		if ((cls & C_DIGIT) || (c == '.' && i + 1 < len && is_digit(s[i + 1])))
		{
			i = skip_number(s, i, len, &type);
			put_constant(&o, type);
			after_word = true;
			continue;
		}
		switch (c)
		{
			case '-':
				if (i + 1 < len && s[i + 1] == '-')
				{
					const unsigned char *nl = memchr(s + i, '\n', len - i);

					i = nl ? (int) (nl - s) + 1 : len;
					gap = true;
					continue;
				}
				break;
			case '/':
				if (i + 1 < len && s[i + 1] == '*')
				{
					i = skip_block_comment(s, i, len);
					gap = true;
					continue;
				}
				break;
			case ';':
				i++;
				gap = true;
				continue;
			case '\'':
				i = skip_string(s, i, len, false);
				put_constant(&o, 's');
				after_word = true;
				continue;
			case '"':
				/* a quoted identifier keeps its case and contents */
				put(&o, '"');
				for (i++; i < len; i++)
				{
					if (s[i] == '"')
					{
						if (i + 1 < len && s[i + 1] == '"')
						{
							put(&o, '"');
							i++;
						}
						else
						{
							i++;
							break;
						}
					}
					put(&o, (char) s[i]);
				}
				put(&o, '"');
				after_word = true;
				continue;
			case '$':
				if (i + 1 < len && is_digit(s[i + 1]))
				{
					/* a parameter: $1 stays $1 */
					for (i++; i < len && is_digit(s[i]); i++)
						;
					put_bytes(&o, s + start, i - start);
					after_word = true;
					continue;
				}
				next = skip_dollar_string(s, i, len);
				if (next >= 0)
				{
					i = next;
					put_constant(&o, 's');
					after_word = true;
					continue;
				}
				break;
			default:
				break;
		}
		/* an operator or punctuation */
		put(&o, (char) c);
		i++;
		after_word = false;
	}
	if (o.n > 0)
		sink(arg, o.buf, o.n);
}

/* ------------------------------------------------------------------------
 * The text shown in the views (statement_text.h)
 * ------------------------------------------------------------------------
 */
typedef struct Shown
{
	char	   *out;
	int			size;			/* bytes available for text (NUL excluded) */
	int			n;
	bool		truncated;
} Shown;

static void
show_bytes(Shown *d, const unsigned char *p, int n)
{
	if (d->n + n > d->size)
	{
		n = d->size - d->n;
		d->truncated = true;
	}
	if (n > 0)
	{
		memcpy(d->out + d->n, p, n);
		d->n += n;
	}
}

int
statement_text_display(const char *src, int len, char *out, int outsize,
					   bool *truncated)
{
	const unsigned char *s = (const unsigned char *) src;
	Shown		d;
	int			i = 0;
	bool		gap = false;	/* whitespace or a comment since the last token */

	d.out = out;
	d.size = outsize - 1;
	d.n = 0;
	d.truncated = false;

	while (i < len && !d.truncated)
	{
		unsigned char c = s[i];
		unsigned char cls = char_class[c];
		int			start = i;
		int			next;
		char		type;

		if (cls & C_SPACE)
		{
			gap = true;
			i++;
			continue;
		}
		if (c == '-' && i + 1 < len && s[i + 1] == '-')
		{
			const unsigned char *nl = memchr(s + i, '\n', len - i);

			i = nl ? (int) (nl - s) + 1 : len;
			gap = true;
			continue;
		}
		if (c == '/' && i + 1 < len && s[i + 1] == '*')
		{
			i = skip_block_comment(s, i, len);
			gap = true;
			continue;
		}
		if (c == ';')
		{
			i++;
			gap = true;
			continue;
		}
		if (gap && d.n > 0)
			show_bytes(&d, (const unsigned char *) " ", 1);
		gap = false;

		if (cls & C_WORD)
		{
			while (i < len && (char_class[s[i]] & C_CONT))
				i++;
			/* E'..', B'..', X'..', N'..': one constant, prefix and all */
			if (i - start == 1 && i < len && s[i] == '\'' &&
				strchr("eEbBxXnN", c) != NULL)
			{
				i = skip_string(s, i, len, c == 'e' || c == 'E');
				show_bytes(&d, (const unsigned char *) "?", 1);
				continue;
			}
			show_bytes(&d, s + start, i - start);
			continue;
		}
		if ((cls & C_DIGIT) || (c == '.' && i + 1 < len && is_digit(s[i + 1])))
		{
			i = skip_number(s, i, len, &type);
			show_bytes(&d, (const unsigned char *) "?", 1);
			continue;
		}
		switch (c)
		{
			case '\'':
				i = skip_string(s, i, len, false);
				show_bytes(&d, (const unsigned char *) "?", 1);
				continue;
			case '"':
				/* a quoted identifier, as it was written */
				for (i++; i < len; i++)
				{
					if (s[i] == '"')
					{
						if (i + 1 < len && s[i + 1] == '"')
							i++;
						else
						{
							i++;
							break;
						}
					}
				}
				show_bytes(&d, s + start, i - start);
				continue;
			case '$':
				if (i + 1 < len && is_digit(s[i + 1]))
				{
					for (i++; i < len && is_digit(s[i]); i++)
						;
					show_bytes(&d, s + start, i - start);
					continue;
				}
				next = skip_dollar_string(s, i, len);
				if (next >= 0)
				{
					i = next;
					show_bytes(&d, (const unsigned char *) "?", 1);
					continue;
				}
				break;
			default:
				break;
		}
		show_bytes(&d, s + i, 1);
		i++;
	}
	out[d.n] = '\0';
	*truncated = d.truncated;
	return d.n;
}
