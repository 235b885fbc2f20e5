# Online rebuild under load: a model of more than 100,000 rows is rebuilt
# beside the live one while a writer appends and a reader queries in a
# loop.  The reader never sees fewer rows than before, nor an error; the
# result equals a from-scratch fold; the table's OID, a view on it, a grant,
# a secondary index, a row-level security policy and a comment survive.  The
# reader's longest wait (the exchange) is printed.
use strict;
use warnings;
use Time::HiRes qw(time);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $rows = 100_000;
my $node = preloaded_node('online', qq{
projections.batch_size = 5000
projections.workers_per_database = 2
});
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE SCHEMA ledger;
    CREATE TABLE ledger.lines (pos bigint PRIMARY KEY, account text NOT NULL, amount numeric NOT NULL);
    CREATE INDEX lines_account_idx ON ledger.lines (account);
    COMMENT ON TABLE ledger.lines IS 'one line per booking';
    CREATE TABLE ledger.balances (account text PRIMARY KEY, balance numeric NOT NULL);
    SET search_path = ledger;
    CREATE FUNCTION ledger.book(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO lines VALUES (e.global_position, e.stream_id, (e.data->>'amount')::numeric);
        INSERT INTO balances VALUES (e.stream_id, (e.data->>'amount')::numeric)
        ON CONFLICT (account) DO UPDATE SET balance = balances.balance + excluded.balance;
    $$;
    SELECT projections.register('ledger', 'ledger.book(projections.events)',
                                tables => ARRAY['ledger.lines', 'ledger.balances']::regclass[]);
    RESET search_path;
    CREATE ROLE auditor LOGIN;
    GRANT USAGE ON SCHEMA ledger TO auditor;
    GRANT SELECT ON ledger.lines TO auditor;
    ALTER TABLE ledger.lines ENABLE ROW LEVEL SECURITY;
    CREATE POLICY auditor_sees_big ON ledger.lines TO auditor USING (amount >= 50);
    CREATE VIEW ledger.per_account AS SELECT account, count(*) AS n FROM ledger.lines GROUP BY account;
});
$node->safe_psql('postgres', qq{
    SELECT count(projections.append('acct-' || (i % 97), 'Booked', jsonb_build_object('amount', i % 100)))
    FROM generate_series(1, $rows) i});
is($node->safe_psql('postgres', q{SELECT projections.wait('ledger', timeout => '300 s')}), 't',
    "the live model holds $rows lines");

my $before = $node->safe_psql('postgres', q{
    SELECT 'ledger.lines'::regclass::oid || ' ' || 'ledger.balances'::regclass::oid || ' '
           || 'ledger.lines_account_idx'::regclass::oid});
my $count_before = $node->safe_psql('postgres', 'SELECT count(*) FROM ledger.lines');
cmp_ok($count_before, '>=', $rows, 'a model of at least 100,000 rows');

# a writer appends all along (pgbench, 2 clients)
my $writer_script = $node->basedir . '/writer.sql';
PostgreSQL::Test::Utils::append_to_file($writer_script, q{
\set n random(1, 1000)
SELECT projections.append('acct-' || (:n % 97), 'Booked', jsonb_build_object('amount', :n % 100));
});
my ($wout, $werr) = ('', '');
my $writer = IPC::Run::start(
    [ 'pgbench', '-n', '-c', '2', '-T', '600', '-f', $writer_script,
      '-h', $node->host, '-p', $node->port, 'postgres' ],
    '>', \$wout, '2>', \$werr);

# the rebuild starts; a reader queries in a loop until it is over
$node->safe_psql('postgres', q{SELECT projections.rebuild('ledger', online => true)});
my $reader = $node->background_psql('postgres');
my ($queries, $errors, $fewer, $longest, $seen_exchange) = (0, 0, 0, 0, 0);
my $deadline = time() + 600;
while (time() < $deadline)
{
    my $t0 = time();
    my $n = eval { $reader->query_safe('SELECT count(*) FROM ledger.lines') };
    my $elapsed = time() - $t0;
    $queries++;
    if (!defined $n) { $errors++; next; }
    chomp $n;
    $fewer++ if $n < $count_before;
    $longest = $elapsed if $elapsed > $longest;
    my $state = $reader->query_safe(q{SELECT rebuild_position IS NULL FROM projections.status});
    chomp $state;
    if ($state eq 't') { $seen_exchange = 1; last; }
}
ok($seen_exchange, 'the online rebuild finished while the reader read');
is($errors, 0, "the reader never got an error ($queries queries)");
is($fewer, 0, 'the reader never saw fewer rows than before the rebuild');
diag(sprintf('the reader\'s longest wait during the online rebuild: %.1f ms', $longest * 1000));
my ($exchange_log) = slurp_file($node->logfile) =~ /(exchanged the read model of projection "ledger".*)/;
diag($exchange_log // 'no exchange line in the log');

# TERM, not INT: a test run started in the background by a shell without job
# control inherits SIGINT ignored, and pgbench would go on for its 600 s
$writer->signal('TERM');
$writer->finish;
is($node->safe_psql('postgres', q{SELECT projections.wait('ledger', timeout => '120 s')}), 't',
    'the writer stopped; the projection caught up');

# the same tables, new contents equal to a fold of every event
is($node->safe_psql('postgres', q{
    SELECT 'ledger.lines'::regclass::oid || ' ' || 'ledger.balances'::regclass::oid || ' '
           || 'ledger.lines_account_idx'::regclass::oid}), $before,
    'the tables and their index kept their OIDs');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM (
        (SELECT pos, account, amount FROM ledger.lines
         EXCEPT ALL SELECT global_position, stream_id, (data->>'amount')::numeric FROM projections.events)
        UNION ALL
        (SELECT global_position, stream_id, (data->>'amount')::numeric FROM projections.events
         EXCEPT ALL SELECT pos, account, amount FROM ledger.lines)) d}), '0',
    'lines equal a from-scratch fold of the events');
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM (
        (SELECT account, balance FROM ledger.balances
         EXCEPT ALL SELECT stream_id, sum((data->>'amount')::numeric) FROM projections.events GROUP BY 1)
        UNION ALL
        (SELECT stream_id, sum((data->>'amount')::numeric) FROM projections.events GROUP BY 1
         EXCEPT ALL SELECT account, balance FROM ledger.balances)) d}), '0',
    'balances too');
is($node->safe_psql('postgres', q{SELECT sum(missing_rows + extra_rows) FROM projections.verify('ledger')}),
    '0', 'verify() agrees');
is($node->safe_psql('postgres', q{SELECT sum(n) = (SELECT count(*) FROM ledger.lines) FROM ledger.per_account}),
    't', 'the view on the table shows the new contents');
is($node->safe_psql('postgres', q{SELECT obj_description('ledger.lines'::regclass, 'pg_class')}),
    'one line per booking', 'the comment stayed');
is($node->safe_psql('postgres', q{SET enable_seqscan = off; EXPLAIN (COSTS OFF)
        SELECT * FROM ledger.lines WHERE account = 'acct-1'}) =~ /lines_account_idx/ ? 1 : 0,
    1, 'the secondary index serves the new contents');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ledger.lines WHERE account = 'acct-1'}),
    $node->safe_psql('postgres', q{SET enable_seqscan = off; SET enable_bitmapscan = off;
        SELECT count(*) FROM ledger.lines WHERE account = 'acct-1'}), '... with every row');
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT min(amount) >= 50, count(*) > 0 FROM ledger.lines},
    extra_params => [ '-U', 'auditor' ]);
is($out, 't|t', 'the grant and the row-level security policy stayed') or diag($err);
is($node->safe_psql('postgres', q{
    SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'projections_build_%'}), '0',
    'no shadow model is left');
unlike(slurp_file($node->logfile), qr/TRAP:|terminated by signal|PANIC/, 'no crash');

$node->stop;
done_testing();
