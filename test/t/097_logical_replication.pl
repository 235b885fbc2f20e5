# Read models are ordinary tables: a publication sends one to another server
# by logical replication, where applications read it like any table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ProjectionsTest;

my $publisher = preloaded_node('publisher', "wal_level = logical\nmax_wal_senders = 4\nmax_replication_slots = 4\n");
$publisher->start;
$publisher->safe_psql('postgres', q{
    CREATE EXTENSION projections;
    CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL, entries integer NOT NULL);
    CREATE FUNCTION book(e projections.events) RETURNS void LANGUAGE sql AS $$
        INSERT INTO balances VALUES (e.stream_id, (e.data->>'amount')::numeric, 1)
        ON CONFLICT (account) DO UPDATE
        SET balance = balances.balance + excluded.balance, entries = balances.entries + 1 $$;
    SELECT projections.register('balances', 'book(projections.events)',
                                tables => ARRAY['balances']::regclass[]);
    SELECT count(projections.append('acct-' || (i % 9), 'Booked', jsonb_build_object('amount', i)))
    FROM generate_series(1, 500) i;
    CREATE PUBLICATION read_models FOR TABLE balances;});
is($publisher->safe_psql('postgres', q{SELECT projections.wait('balances', timeout => '60 s')}), 't',
    'the publisher builds the read model');

# the subscriber needs only the table, not the extension
my $subscriber = PostgreSQL::Test::Cluster->new('subscriber');
$subscriber->init;
$subscriber->start;
$subscriber->safe_psql('postgres', q{
    CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL, entries integer NOT NULL)});
my $connstr = $publisher->connstr . ' dbname=postgres';
$subscriber->safe_psql('postgres', qq{
    CREATE SUBSCRIPTION read_models CONNECTION '$connstr' PUBLICATION read_models});
$subscriber->wait_for_subscription_sync($publisher, 'read_models');

my $compare = q{SELECT string_agg(account || '=' || balance || '/' || entries, ',' ORDER BY account) FROM balances};
is($subscriber->safe_psql('postgres', $compare), $publisher->safe_psql('postgres', $compare),
    'the subscriber holds the read model as the publisher has it');

# events go on: the projection's writes stream to the subscriber
$publisher->safe_psql('postgres', q{
    SELECT count(projections.append('acct-' || (i % 11), 'Booked', jsonb_build_object('amount', i)))
    FROM generate_series(501, 800) i});
is($publisher->safe_psql('postgres', q{SELECT projections.wait('balances', timeout => '60 s')}), 't',
    'the publisher applies new events');
$publisher->wait_for_catchup('read_models');
is($subscriber->safe_psql('postgres', $compare), $publisher->safe_psql('postgres', $compare),
    'the subscriber follows');
is($subscriber->safe_psql('postgres', q{SELECT sum(entries) FROM balances}), '800',
    'every event is counted once there too');

$subscriber->stop;
$publisher->stop;
done_testing();
