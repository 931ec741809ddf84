// The Prometheus text parser and the scrape evaluation (gauges as they are,
// counters as rates), as table tests with malformed cases.
import test from 'ava';
import { AgentError, evaluateScrape, parsePrometheusText, parseSeriesSelector, seriesKind, type SeriesSpec } from '@loadfeed/agent';

const EXPOSITION = `# HELP http_requests_in_flight Requests being served.
# TYPE http_requests_in_flight gauge
http_requests_in_flight 7
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a"} 100
http_requests_total{code="500",path="/a"} 4 1700000000000
http_requests_total{code="503",path="/b \\"q\\" \\\\ x"} 1
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 3
latency_seconds_bucket{le="+Inf"} 5
latency_seconds_sum 0.75
latency_seconds_count 5
# TYPE untyped_thing untyped
untyped_thing NaN
other_metric{a="b"} 12
`;

test('parses wanted series with labels, escapes, timestamps and special values', (t) => {
  const exp = parsePrometheusText(EXPOSITION);
  t.is(exp.types.get('http_requests_total'), 'counter');
  t.is(exp.types.get('latency_seconds'), 'histogram');
  t.is(exp.series.length, 10);
  t.deepEqual(exp.series[3], { name: 'http_requests_total', labels: { code: '503', path: '/b "q" \\ x' }, value: 1 });
  t.is(exp.series[2]?.value, 4, 'the timestamp is not the value');
  t.deepEqual(exp.series[5], { name: 'latency_seconds_bucket', labels: { le: '+Inf' }, value: 5 });
  t.is(parsePrometheusText('m +Inf\nn -Inf\n').series.map((s) => s.value).join(), 'Infinity,-Infinity');
  t.true(Number.isNaN(exp.series[8]?.value));
});

test('only wanted names are parsed: a malformed line of another metric does not fail the scrape', (t) => {
  const text = `${EXPOSITION}broken_metric{a="unterminated 1\n`;
  t.throws(() => parsePrometheusText(text), { instanceOf: AgentError, message: /line 17: unterminated value of label a/ });
  const exp = parsePrometheusText(text, new Set(['http_requests_in_flight']));
  t.deepEqual(exp.series, [{ name: 'http_requests_in_flight', labels: {}, value: 7 }]);
});

const MALFORMED: readonly [string, string, RegExp][] = [
  ['bad line', '{a="b"} 1\n', /line 1: expected a metric name/],
  ['no value', 'm\n', /line 1: expected "value \[timestamp\]"/],
  ['bad value', 'm abc\n', /line 1: m: value "abc" is not a number/],
  ['too many fields', 'm 1 2 3\n', /line 1: expected "value \[timestamp\]"/],
  ['truncated labels', 'm{a="b"\n', /line 1: expected , or \} after label a/],
  ['label without quotes', 'm{a=b} 1\n', /line 1: expected a quoted value for label a/],
  ['selector operator in an exposition', 'm{a!="b"} 1\n', /line 1: expected = after label a/],
  ['unknown type', '# TYPE m weird\n', /line 1: unknown type "weird"/],
];
for (const [name, text, error] of MALFORMED) {
  test(`malformed: ${name}`, (t) => {
    t.throws(() => parsePrometheusText(text), { instanceOf: AgentError, message: error });
  });
}

test('empty text, blank lines, comments and CRLF-free endings parse to nothing', (t) => {
  t.deepEqual(parsePrometheusText('').series, []);
  t.deepEqual(parsePrometheusText('\n\n# just a comment\n').series, []);
  t.deepEqual(parsePrometheusText('m 1').series, [{ name: 'm', labels: {}, value: 1 }], 'a last line without newline');
});

test('selectors: equality, inequality and anchored regular expressions', (t) => {
  const sel = parseSeriesSelector('http_requests_total{code=~"5..",path!="/b"}');
  t.is(sel.metric, 'http_requests_total');
  t.deepEqual(sel.matchers.map((m) => [m.label, m.op, m.value]), [['code', '=~', '5..'], ['path', '!=', '/b']]);
  t.deepEqual(parseSeriesSelector('up'), { metric: 'up', matchers: [] });
  t.throws(() => parseSeriesSelector('{a="b"}'), { message: /expected a metric name/ });
  t.throws(() => parseSeriesSelector('m{a="b"'), { message: /expected metric\{label="value",...\}/ });
  t.throws(() => parseSeriesSelector('m{a=~"("}'), { message: /label a: Invalid regular expression/ });
});

test('series kinds come from # TYPE, including histogram parts and _total', (t) => {
  const types = parsePrometheusText(EXPOSITION).types;
  t.is(seriesKind('http_requests_total', types), 'counter');
  t.is(seriesKind('http_requests_in_flight', types), 'gauge');
  t.is(seriesKind('latency_seconds_count', types), 'counter');
  t.is(seriesKind('latency_seconds_sum', types), 'counter');
  t.is(seriesKind('untyped_thing', types), 'gauge');
  t.is(seriesKind('never_declared_total', types), 'gauge', 'no # TYPE: taken as it is');
  t.is(seriesKind('requests_total', new Map([['requests', 'counter']])), 'counter', 'OpenMetrics family name without _total');
});

const spec = (name: string, selector: string): SeriesSpec => ({ name, selector: parseSeriesSelector(selector), text: selector });

test('a scrape: gauges as they are, counters as per-second rates from the second scrape on, summed over matching series', (t) => {
  const specs = [
    spec('in_flight', 'http_requests_in_flight'),
    spec('rps', 'http_requests_total'),
    spec('eps', 'http_requests_total{code=~"5.."}'),
    spec('missing', 'no_such_metric'),
  ];
  const first = evaluateScrape(specs, parsePrometheusText(EXPOSITION), 10_000, null);
  t.deepEqual([...first.values], [['in_flight', 7]], 'no rate without a previous scrape');
  t.deepEqual(first.unmatched, ['no_such_metric']);
  const later = EXPOSITION.replace('{code="200",path="/a"} 100', '{code="200",path="/a"} 160').replace('{code="500",path="/a"} 4', '{code="500",path="/a"} 8');
  const second = evaluateScrape(specs, parsePrometheusText(later), 12_000, first.totals);
  t.deepEqual(Object.fromEntries(second.values), { in_flight: 7, rps: 32, eps: 2 });
  // A counter reset (the application restarted) gives no rate, not a negative one.
  const reset = evaluateScrape(specs, parsePrometheusText(later.replace('} 160', '} 1')), 13_000, second.totals);
  t.false(reset.values.has('rps'));
  t.is(reset.values.get('eps'), 0);
});
