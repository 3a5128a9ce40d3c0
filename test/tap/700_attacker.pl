# An attacker's test (#19): alice, a role with no privilege but CREATE on
# schema public (the default on databases upgraded from PostgreSQL 14 or
# older, and what the role owning Coder's tables has), plants code where
# coder_health looks: a public.replicas view whose column calls her
# function, then a replicas table with a row-level security policy calling
# it, an overload of pg_stat_statements that would make an unqualified or
# schema-qualified call by name ambiguous, and look-alike functions and
# operators.  Her function counts its calls in a sequence (nextval is not
# undone by a rollback) and tries ALTER ROLE alice SUPERUSER.  Then every
# coder_health view is read as a superuser and as a pg_monitor role: every
# view must answer, none of the planted code may have run, alice must not
# be a superuser.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CoderHealthTest;

my $node = ch_node('attacker',
	conf => "shared_preload_libraries = 'pg_stat_statements, coder_health'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_stat_statements;
	CREATE EXTENSION coder_health;
	CREATE ROLE alice LOGIN;
	GRANT CREATE ON SCHEMA public TO alice;
	CREATE ROLE mon LOGIN IN ROLE pg_monitor;
	SELECT 1;
	SELECT coder_health.flush();
});

sub as_alice
{
	my ($sql) = @_;
	$node->safe_psql('postgres', $sql, extra_params => [ '-U', 'alice' ]);
}

# alice's payload, and the look-alikes that do not depend on the phase
as_alice(q{
	CREATE SEQUENCE public.alice_calls;
	GRANT USAGE, UPDATE ON SEQUENCE public.alice_calls TO PUBLIC;
	CREATE FUNCTION public.alice_fn() RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM nextval('public.alice_calls');
		BEGIN
			ALTER ROLE alice SUPERUSER;
		EXCEPTION WHEN OTHERS THEN NULL;
		END;
		RETURN 'pwned';
	END $$;
	GRANT EXECUTE ON FUNCTION public.alice_fn() TO PUBLIC;
	CREATE FUNCTION public.alice_bool() RETURNS boolean LANGUAGE sql
		AS $$ SELECT public.alice_fn() IS NOT NULL $$;

	-- 2. an overload that makes pg_stat_statements(true) ambiguous
	CREATE FUNCTION public.pg_stat_statements(showtext boolean, x int DEFAULT 0,
		OUT dbid oid, OUT userid oid, OUT queryid bigint, OUT toplevel boolean,
		OUT query text)
	RETURNS SETOF record LANGUAGE sql
	AS $$ SELECT 0::oid, 0::oid, 0::bigint, true, public.alice_fn() $$;

	-- look-alikes of what the views and functions call
	CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE sql AS $$ SELECT public.alice_fn() $$;
	CREATE FUNCTION public.btrim(varchar, varchar) RETURNS text LANGUAGE sql AS $$ SELECT public.alice_fn() $$;
	CREATE FUNCTION public.format(varchar, VARIADIC text[]) RETURNS text LANGUAGE sql AS $$ SELECT public.alice_fn() $$;
	CREATE FUNCTION public.pg_has_role(varchar, varchar, varchar) RETURNS boolean LANGUAGE sql AS $$ SELECT public.alice_bool() $$;
	CREATE FUNCTION public.current_setting(varchar) RETURNS text LANGUAGE sql AS $$ SELECT public.alice_fn() $$;
	CREATE FUNCTION public.to_regclass(varchar) RETURNS regclass LANGUAGE sql AS $$ SELECT public.alice_fn()::regclass $$;
	CREATE FUNCTION public.has_table_privilege(oid, varchar) RETURNS boolean LANGUAGE sql AS $$ SELECT public.alice_bool() $$;
	CREATE FUNCTION public.date_part(varchar, interval) RETURNS float8 LANGUAGE sql AS $$ SELECT length(public.alice_fn())::float8 $$;
	CREATE FUNCTION public.alice_eq(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT public.alice_bool() $$;
	CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.alice_eq);
	CREATE FUNCTION public.alice_int_eq(integer, integer) RETURNS boolean LANGUAGE sql AS $$ SELECT public.alice_bool() $$;
	CREATE OPERATOR public.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = public.alice_int_eq);
	CREATE FUNCTION public.alice_oid_eq(oid, oid) RETURNS boolean LANGUAGE sql AS $$ SELECT public.alice_bool() $$;
	CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = public.alice_oid_eq);
});
is(as_alice(q{SELECT count(*) FROM pg_catalog.pg_proc WHERE pronamespace = 'public'::regnamespace
	AND proname = 'pg_stat_statements'}), '2',
	'alice planted an overload of pg_stat_statements next to the real one');

# Every view of the extension, read by a role; returns the failures.
my @views = split /\n/, $node->safe_psql('postgres', q{
	SELECT c.relname FROM pg_catalog.pg_class c
	JOIN pg_catalog.pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
	     AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
	JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'coder_health'
	WHERE c.relkind = 'v' ORDER BY 1});
cmp_ok(scalar(@views), '>=', 15, 'the extension has its views (' . scalar(@views) . ')');

sub read_all_views
{
	my ($role) = @_;
	my @failed;
	foreach my $v (@views)
	{
		my ($rc, $out, $err) = $node->psql('postgres',
			"SELECT count(*) FROM coder_health.\"$v\"",
			extra_params => [ '-U', $role ]);
		push @failed, "$v: $err" if $rc != 0 || $err ne '';
	}
	return join("\n", @failed);
}

sub planted_calls
{
	return $node->safe_psql('postgres',
		'SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.alice_calls');
}

sub alice_is_superuser
{
	return $node->safe_psql('postgres',
		q{SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = 'alice'});
}

# 1. public.replicas is alice's view: its hostname column runs her function
as_alice(q{
	CREATE VIEW public.replicas AS
	SELECT '00000000-0000-0000-0000-00000000000a'::uuid AS id,
	       now() AS created_at, now() AS started_at, NULL::timestamptz AS stopped_at,
	       now() AS updated_at, public.alice_fn() AS hostname, 1 AS region_id,
	       'http://127.0.0.2:8080'::text AS relay_address, 900 AS database_latency,
	       'v2'::text AS version;
	GRANT SELECT ON public.replicas TO PUBLIC;
});
foreach my $role ('postgres', 'mon')
{
	is(read_all_views($role), '', "replicas is a view: every view answers for $role");
}
is(planted_calls(), '0', 'replicas is a view: alice\'s function never ran');
is(alice_is_superuser(), 'f', 'replicas is a view: alice is not a superuser');
is($node->safe_psql('postgres', 'SELECT count(*) FROM coder_health.coder_replicas()'),
	'0', 'a view named replicas is not read at all (no rows, not even "read")');

# 2. public.replicas is alice's table of the right shape, with row-level
# security whose policy runs her function
as_alice(q{
	DROP VIEW public.replicas;
	CREATE TABLE public.replicas (
		id uuid NOT NULL, created_at timestamptz NOT NULL,
		started_at timestamptz NOT NULL, stopped_at timestamptz,
		updated_at timestamptz NOT NULL, hostname text NOT NULL,
		region_id integer NOT NULL, relay_address text NOT NULL,
		database_latency integer NOT NULL, version text NOT NULL);
	INSERT INTO public.replicas VALUES
	  ('00000000-0000-0000-0000-00000000000a', now(), now(), NULL, now(),
	   'coder-a', 1, 'http://[FD00::1]:8080', 900, 'v2');
	ALTER TABLE public.replicas ENABLE ROW LEVEL SECURITY;
	ALTER TABLE public.replicas FORCE ROW LEVEL SECURITY;
	CREATE POLICY p ON public.replicas USING (public.alice_bool());
	GRANT SELECT ON public.replicas TO PUBLIC;
});
foreach my $role ('postgres', 'mon')
{
	is(read_all_views($role), '', "replicas has a policy: every view answers for $role");
}
is(planted_calls(), '0', 'replicas has a policy: the policy never ran');
is(alice_is_superuser(), 'f', 'replicas has a policy: alice is not a superuser');
is($node->safe_psql('postgres', q{SELECT string_agg(coalesce(replica_id, '-') || ' '
	|| coalesce(relay_host, '-') || ' ' || coalesce(source_ok::text, '-'), ', ')
	FROM coder_health.coder_replicas()}),
	'00000000-0000-0000-0000-00000000000a fd00::1 -, - - true',
	'a superuser (who bypasses row-level security) reads the rows from the heap');
is($node->safe_psql('postgres', 'SELECT count(*) FROM coder_health.coder_replicas()',
		extra_params => [ '-U', 'mon' ]),
	'0', 'a role subject to row-level security gets no rows (policies are never run)');

# 3. a table of the right names but a type of alice's (its output function
# would be hers): not read
as_alice(q{
	DROP TABLE public.replicas;
	CREATE DOMAIN public.alice_text AS text CHECK (public.alice_bool());
	CREATE TABLE public.replicas (
		id uuid, hostname public.alice_text, relay_address text,
		region_id integer, version text, database_latency integer,
		updated_at timestamptz);
	GRANT SELECT ON public.replicas TO PUBLIC;
});
foreach my $role ('postgres', 'mon')
{
	is(read_all_views($role), '', "replicas has a column of alice's type: every view answers for $role");
}
is($node->safe_psql('postgres', 'SELECT count(*) FROM coder_health.coder_replicas()'),
	'0', 'a column of another type: the table is not read');

# pg_stat_statements: its texts still come through, from the real function
$node->safe_psql('postgres', "SELECT count(*) AS marker FROM pg_catalog.pg_am;\nSELECT coder_health.flush();");
is($node->safe_psql('postgres', q{SELECT count(*) FROM coder_health.statement_texts()
	WHERE query = 'SELECT count(*) AS marker FROM pg_catalog.pg_am'}),
	'1', 'statement texts come from the real pg_stat_statements despite the overload');
is($node->safe_psql('postgres', q{SELECT count(*) FROM coder_health.statement_texts()
	WHERE query = 'pwned'}), '0', 'the overload is never called');

is(planted_calls(), '0', 'in the end: none of alice\'s code ran');
is(alice_is_superuser(), 'f', 'in the end: alice is not a superuser');
ok(!ch_server_crashed($node), 'no backend crashed');
$node->stop;
done_testing();
