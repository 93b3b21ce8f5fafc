package vqgram.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.DocValues;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.TermState;
import org.apache.lucene.index.TermStates;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.Scorable;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.Scorer;
import org.apache.lucene.search.SimpleCollector;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.Weight;
import org.apache.lucene.search.similarities.Similarity.SimScorer;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.FixedBitSet;

/**
 * Rankings as primitive arrays, and queries built from arrays, for vqgram's Python side (pyjnius).
 *
 * <p>pyjnius turns every ScoreDoc of a TopDocs into a Python object, one JNI
 * call per field: a full ranking of 9,500 documents took ~100 ms that way, and
 * the 116 hits of a top 100 with their stored fields ~15 ms. Here matches come
 * back as an int[] of doc numbers and a float[] of scores, which pyjnius
 * converts in one call each, and the caller orders ties by its own id.
 *
 * <p>Built with {@code javac --release 17} from this file ({@code make java});
 * the .class beside it is what vqgram loads.
 */
public final class Rankings {
  private final int[] docs;
  private final float[] scores;

  private Rankings(int[] docs, float[] scores) {
    this.docs = docs;
    this.scores = scores;
  }

  /** Doc numbers (in the searcher's top-level reader) of every match, in collection order. */
  public int[] docs() {
    return docs;
  }

  /** The score of each match, parallel to {@link #docs()}. */
  public float[] scores() {
    return scores;
  }

  /** Every document {@code query} matches, with its score under the searcher's similarity. */
  public static Rankings all(IndexSearcher searcher, Query query) throws IOException {
    return collect(searcher, query, new AllMatches(searcher.getIndexReader().numDocs()));
  }

  /**
   * Every document {@code disjunction} matches, scored by the Jaccard index
   * J = s / (|B| + |A| - s): the searcher must rank by BooleanSimilarity, so
   * the disjunction of the query's |A| = {@code querySize} words scores
   * s = |A ∩ B|, and the NUMERIC doc values {@code sizeField} hold |B|. The
   * same float arithmetic as vqgram's FunctionScoreQuery, which costs a
   * chain of value-source calls per document.
   */
  public static Rankings jaccard(IndexSearcher searcher, Query disjunction, int querySize, String sizeField)
      throws IOException {
    return collect(searcher, disjunction, new JaccardMatches(searcher.getIndexReader().numDocs(), querySize, sizeField));
  }

  /**
   * The top {@code k} of {@code query} by score, and past k every document tied
   * with the k-th (Lucene breaks ties by doc number; the caller, by id). The
   * plain top-k search keeps MaxScore skipping; {@code margin} more hits show
   * whether the k-th is tied, and only then does {@code searchAfter} read on.
   */
  public static Rankings top(IndexSearcher searcher, Query query, int k, int margin) throws IOException {
    int n = k + margin;
    ScoreDoc[] batch = searcher.search(query, n).scoreDocs;
    List<ScoreDoc> docs = new ArrayList<>(Arrays.asList(batch));
    if (batch.length > k) {
      float cut = batch[k - 1].score;
      while (batch.length == n && batch[n - 1].score == cut) {
        batch = searcher.searchAfter(batch[n - 1], query, n).scoreDocs;
        docs.addAll(Arrays.asList(batch));
      }
      docs.removeIf(sd -> sd.score < cut);
    }
    int[] ids = new int[docs.size()];
    float[] scores = new float[docs.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = docs.get(i).doc;
      scores[i] = docs.get(i).score;
    }
    return new Rankings(ids, scores);
  }

  /** Documents scored together by {@link #topTermAtATime}: their sums and norms stay in cache. */
  private static final int WINDOW = 4096;
  private static ExecutorService pool;

  /**
   * The top {@code k} of a disjunction of SHOULD term clauses (as {@link #disjunction} builds,
   * over one field), and every document tied with the k-th, scored term at a time in windows of
   * documents.
   *
   * <p>Image queries are hundreds of words of similar weight, and most documents match some of
   * them, so MaxScore and WAND can skip little: Lucene 9.9 then pays a heap of hundreds of
   * clause iterators per posting. Here each term's postings are read in turn into a window of
   * {@value #WINDOW} score accumulators (what Lucene's own BooleanScorer does for exhaustive
   * disjunctions), and only the window's matches meet the top-k threshold. Each posting scores
   * as TermQuery's scorer scores it (the searcher's similarity, the term's statistics, the
   * document's norm, read once per window), summed in double and cast to float as BooleanQuery
   * does; only the order of the sum differs. {@code filter} (null: none) restricts the matches
   * without scoring, as a FILTER clause would; deleted documents never match.
   *
   * <p>The reader's documents are cut into {@code shares} ranges of about equal size (inside a
   * segment too: each range advances its own postings to its start), scored side by side (the
   * first in the calling thread, the others on a pool of one daemon thread per further
   * processor), and their top k merged; a document's score does not depend on the cut.
   */
  public static Rankings topTermAtATime(IndexSearcher searcher, Query disjunction, Query filter, int k, int shares)
      throws IOException {
    List<TermClause> clauses = new ArrayList<>();
    for (BooleanClause clause : ((BooleanQuery) disjunction).clauses()) {
      if (clause.getOccur() != BooleanClause.Occur.SHOULD) {
        throw new IllegalArgumentException("term-at-a-time scoring takes SHOULD clauses only, not " + clause);
      }
      TermClause term = TermClause.of(searcher, clause.getQuery());
      if (!clauses.isEmpty() && !term.term.field().equals(clauses.get(0).term.field())) {
        throw new IllegalArgumentException("term-at-a-time scoring takes terms of one field, not " + disjunction);
      }
      if (term.sim != null) {
        clauses.add(term);
      }
    }
    if (clauses.isEmpty()) {  // no word of the query is in the index
      return new Rankings(new int[0], new float[0]);
    }
    Weight passing = filter == null ? null
        : searcher.createWeight(searcher.rewrite(filter), ScoreMode.COMPLETE_NO_SCORES, 1f);
    List<List<DocRange>> parts = DocRange.split(searcher.getIndexReader().leaves(), Math.max(1, shares));
    List<Future<TopScores>> others = new ArrayList<>();
    for (List<DocRange> part : parts.subList(1, parts.size())) {
      others.add(pool().submit(() -> scoreRanges(part, clauses, passing, k)));
    }
    TopScores top = scoreRanges(parts.get(0), clauses, passing, k);
    for (Future<TopScores> other : others) {
      try {
        top.offerAll(other.get());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while scoring", e);
      } catch (ExecutionException e) {
        throw e.getCause() instanceof IOException ? (IOException) e.getCause() : new IOException(e.getCause());
      }
    }
    return top.rankings();
  }

  private static synchronized ExecutorService pool() {
    if (pool == null) {
      pool = Executors.newFixedThreadPool(Math.max(1, Runtime.getRuntime().availableProcessors() - 1), task -> {
        Thread t = new Thread(task, "vqgram-term-at-a-time");
        t.setDaemon(true);
        return t;
      });
    }
    return pool;
  }

  /** Documents [from, to) of one segment: a share of a query's work. */
  private static final class DocRange {
    final LeafReaderContext leaf;
    final int from;
    final int to;

    private DocRange(LeafReaderContext leaf, int from, int to) {
      this.leaf = leaf;
      this.from = from;
      this.to = to;
    }

    /** The leaves' documents in up to {@code parts} shares of about equal size, cut at window bounds. */
    static List<List<DocRange>> split(List<LeafReaderContext> leaves, int parts) {
      long total = 0;
      for (LeafReaderContext leaf : leaves) {
        total += leaf.reader().maxDoc();
      }
      long share = (total + parts - 1) / parts;
      List<List<DocRange>> out = new ArrayList<>();
      out.add(new ArrayList<>());
      long room = share;
      for (LeafReaderContext leaf : leaves) {
        int from = 0;
        int maxDoc = leaf.reader().maxDoc();
        while (from < maxDoc) {
          if (room <= 0 && out.size() < parts) {
            out.add(new ArrayList<>());
            room = share;
          }
          long take = out.size() < parts ? Math.max(WINDOW, (room + WINDOW - 1) / WINDOW * WINDOW) : maxDoc;
          int to = (int) Math.min(maxDoc, from + take);
          out.get(out.size() - 1).add(new DocRange(leaf, from, to));
          room -= to - from;
          from = to;
        }
      }
      return out;
    }
  }

  /** The top k (with ties) of the documents in {@code ranges}, scored window by window ({@code clauses}: one or more). */
  private static TopScores scoreRanges(List<DocRange> ranges, List<TermClause> clauses, Weight passing, int k)
      throws IOException {
    TopScores top = new TopScores(k);
    double[] sums = new double[WINDOW];
    long[] norms = new long[WINDOW];
    FixedBitSet touched = new FixedBitSet(WINDOW);
    List<PostingsEnum> postings = new ArrayList<>();
    List<SimScorer> sims = new ArrayList<>();
    for (DocRange range : ranges) {
      LeafReader reader = range.leaf.reader();
      Bits accept = acceptedDocs(reader.getLiveDocs(), passing, range.leaf);
      if (accept == NONE) {
        continue;
      }
      postings.clear();
      sims.clear();
      for (TermClause c : clauses) {
        PostingsEnum p = c.postings(range.leaf);
        if (p != null && p.advance(range.from) < range.to) {
          postings.add(p);
          sims.add(c.sim);
        }
      }
      NumericDocValues normValues = reader.getNormValues(clauses.get(0).term.field());
      for (int base = range.from; base < range.to && !postings.isEmpty(); base += WINDOW) {
        int end = Math.min(base + WINDOW, range.to);
        readNorms(normValues, base, end, norms);
        for (int t = 0; t < postings.size(); t++) {
          addScores(postings.get(t), sims.get(t), base, end, norms, sums, touched);
        }
        for (int i = touched.nextSetBit(0); i != DocIdSetIterator.NO_MORE_DOCS;
            i = i + 1 < WINDOW ? touched.nextSetBit(i + 1) : DocIdSetIterator.NO_MORE_DOCS) {
          if (accept == null || accept.get(base + i)) {
            top.offer(range.leaf.docBase + base + i, (float) sums[i]);
          }
          sums[i] = 0;
        }
        touched.clear();
        for (int t = postings.size() - 1; t >= 0; t--) {
          if (postings.get(t).docID() >= range.to) {
            postings.remove(t);
            sims.remove(t);
          }
        }
      }
    }
    return top;
  }

  /** The norms of documents [base, end) as LeafSimScorer reads them: 1 without norms, 0 for a doc without one. */
  private static void readNorms(NumericDocValues values, int base, int end, long[] norms) throws IOException {
    for (int d = base; d < end; d++) {
      norms[d - base] = values == null ? 1L : values.advanceExact(d) ? values.longValue() : 0L;
    }
  }

  /** Adds one term's score of each of its documents before {@code end} to the window at {@code base}. */
  private static void addScores(PostingsEnum postings, SimScorer sim, int base, int end, long[] norms, double[] sums,
      FixedBitSet touched) throws IOException {
    for (int doc = postings.docID(); doc < end; doc = postings.nextDoc()) {
      sums[doc - base] += sim.score(postings.freq(), norms[doc - base]);
      touched.set(doc - base);
    }
  }

  private static final Bits NONE = new Bits.MatchNoBits(0);

  /** The documents of {@code leaf} that may match: live and passing the filter (null: all; NONE: none). */
  private static Bits acceptedDocs(Bits live, Weight passing, LeafReaderContext leaf) throws IOException {
    if (passing == null) {
      return live;
    }
    Scorer s = passing.scorer(leaf);
    if (s == null) {
      return NONE;
    }
    FixedBitSet bits = new FixedBitSet(leaf.reader().maxDoc());
    bits.or(s.iterator());
    if (live != null) {
      for (int i = bits.nextSetBit(0); i != DocIdSetIterator.NO_MORE_DOCS;
          i = i + 1 < bits.length() ? bits.nextSetBit(i + 1) : DocIdSetIterator.NO_MORE_DOCS) {
        if (!live.get(i)) {
          bits.clear(i);
        }
      }
    }
    return bits;
  }

  /** One (possibly boosted) TermQuery clause with the scorer TermQuery's weight would give it. */
  private static final class TermClause {
    final Term term;
    final TermStates states;
    final SimScorer sim;  // null: no document holds the term

    private TermClause(Term term, TermStates states, SimScorer sim) {
      this.term = term;
      this.states = states;
      this.sim = sim;
    }

    static TermClause of(IndexSearcher searcher, Query query) throws IOException {
      float boost = 1f;
      if (query instanceof BoostQuery) {
        boost = ((BoostQuery) query).getBoost();
        query = ((BoostQuery) query).getQuery();
      }
      if (!(query instanceof TermQuery)) {
        throw new IllegalArgumentException("term-at-a-time scoring takes term queries only, not " + query);
      }
      Term term = ((TermQuery) query).getTerm();
      TermStates states = TermStates.build(searcher, term, true);
      if (states.docFreq() == 0) {
        return new TermClause(term, states, null);
      }
      SimScorer sim = searcher.getSimilarity().scorer(boost, searcher.collectionStatistics(term.field()),
          searcher.termStatistics(term, states.docFreq(), states.totalTermFreq()));
      return new TermClause(term, states, sim);
    }

    /** The term's postings with frequencies in {@code leaf}, or null where the segment lacks it. */
    PostingsEnum postings(LeafReaderContext leaf) throws IOException {
      TermState state = states.get(leaf);
      if (state == null) {
        return null;
      }
      TermsEnum terms = leaf.reader().terms(term.field()).iterator();
      terms.seekExact(term.bytes(), state);
      return terms.postings(null, PostingsEnum.FREQS);
    }
  }

  /**
   * The k best scores seen so far (a min-heap of floats, the threshold at its root) and every
   * (doc, score) offered at or above the threshold of its time; {@link #rankings} keeps those
   * at or above the final k-th score, ties included.
   */
  private static final class TopScores {
    private final float[] heap;
    private int size;
    private int[] docs = new int[64];
    private float[] scores = new float[64];
    private int kept;

    TopScores(int k) {
      heap = new float[Math.max(1, k)];
    }

    void offer(int doc, float score) {
      if (size == heap.length && score < heap[0]) {
        return;
      }
      if (kept == docs.length) {
        docs = Arrays.copyOf(docs, 2 * kept);
        scores = Arrays.copyOf(scores, 2 * kept);
      }
      docs[kept] = doc;
      scores[kept++] = score;
      if (size < heap.length) {
        heap[size++] = score;
        for (int i = size - 1; i > 0 && heap[(i - 1) / 2] > heap[i]; i = (i - 1) / 2) {
          swap(i, (i - 1) / 2);
        }
      } else if (score > heap[0]) {
        heap[0] = score;
        for (int i = 0; ; ) {
          int least = i;
          for (int c = 2 * i + 1; c <= 2 * i + 2 && c < size; c++) {
            if (heap[c] < heap[least]) {
              least = c;
            }
          }
          if (least == i) {
            break;
          }
          swap(i, least);
          i = least;
        }
      }
    }

    /** Every candidate {@code other} kept, offered here: the merged top k of two shares. */
    void offerAll(TopScores other) {
      for (int i = 0; i < other.kept; i++) {
        offer(other.docs[i], other.scores[i]);
      }
    }

    private void swap(int i, int j) {
      float t = heap[i];
      heap[i] = heap[j];
      heap[j] = t;
    }

    Rankings rankings() {
      float cut = size == heap.length ? heap[0] : Float.NEGATIVE_INFINITY;
      int n = 0;
      for (int i = 0; i < kept; i++) {
        if (scores[i] >= cut) {
          docs[n] = docs[i];
          scores[n++] = scores[i];
        }
      }
      return new Rankings(Arrays.copyOf(docs, n), Arrays.copyOf(scores, n));
    }
  }

  /**
   * BooleanQuery(SHOULD BoostQuery(TermQuery)) over {@code field}, one clause per
   * term; {@code boosts} null leaves the terms unboosted. One call instead of
   * parsing a query string (384 terms: ~3 ms) or four calls per term.
   */
  public static Query disjunction(String field, String[] terms, float[] boosts) {
    BooleanQuery.Builder query = new BooleanQuery.Builder();
    for (int i = 0; i < terms.length; i++) {
      Query term = new TermQuery(new Term(field, terms[i]));
      query.add(boosts == null ? term : new BoostQuery(term, boosts[i]), BooleanClause.Occur.SHOULD);
    }
    return query.build();
  }

  /**
   * The stored {@code fields} of each of {@code docs}, flattened doc by doc
   * (null where a document lacks a field): a page of hits' metadata in one call.
   */
  public static String[] storedValues(IndexReader reader, int[] docs, String[] fields) throws IOException {
    StoredFields stored = reader.storedFields();
    Set<String> wanted = Set.of(fields);
    String[] out = new String[docs.length * fields.length];
    for (int i = 0; i < docs.length; i++) {
      Document doc = stored.document(docs[i], wanted);
      for (int f = 0; f < fields.length; f++) {
        out[i * fields.length + f] = doc.get(fields[f]);
      }
    }
    return out;
  }

  private static Rankings collect(IndexSearcher searcher, Query query, AllMatches collector) throws IOException {
    searcher.search(query, collector);
    return new Rankings(Arrays.copyOf(collector.docs, collector.size), Arrays.copyOf(collector.scores, collector.size));
  }

  /**
   * The UTF-8 values of a BINARY doc-values field, indexed by top-level doc
   * number (null where a document has none): the stored ids of a whole
   * reader in one call, to map doc numbers to ids without a call per hit.
   */
  public static String[] binaryValues(IndexReader reader, String field) throws IOException {
    String[] out = new String[reader.maxDoc()];
    for (LeafReaderContext leaf : reader.leaves()) {
      BinaryDocValues values = DocValues.getBinary(leaf.reader(), field);
      for (int d = values.nextDoc(); d != DocIdSetIterator.NO_MORE_DOCS; d = values.nextDoc()) {
        out[leaf.docBase + d] = values.binaryValue().utf8ToString();
      }
    }
    return out;
  }

  /** Collects (doc, score) of every match into growing arrays. */
  private static class AllMatches extends SimpleCollector {
    int[] docs;
    float[] scores;
    int size;
    private int docBase;
    Scorable scorer;

    AllMatches(int expected) {
      docs = new int[Math.max(16, expected)];
      scores = new float[docs.length];
    }

    @Override
    protected void doSetNextReader(LeafReaderContext context) throws IOException {
      docBase = context.docBase;
    }

    @Override
    public void setScorer(Scorable scorer) {
      this.scorer = scorer;
    }

    @Override
    public void collect(int doc) throws IOException {
      if (size == docs.length) {
        docs = Arrays.copyOf(docs, 2 * size);
        scores = Arrays.copyOf(scores, 2 * size);
      }
      docs[size] = docBase + doc;
      scores[size] = score(doc);
      size++;
    }

    float score(int doc) throws IOException {
      return scorer.score();
    }

    @Override
    public ScoreMode scoreMode() {
      return ScoreMode.COMPLETE;
    }
  }

  /** AllMatches scoring s / (|B| + (|A| - s)) from the disjunction's score s and the doc values |B|. */
  private static final class JaccardMatches extends AllMatches {
    private final float querySize;
    private final String sizeField;
    private NumericDocValues sizes;

    JaccardMatches(int expected, int querySize, String sizeField) {
      super(expected);
      this.querySize = querySize;
      this.sizeField = sizeField;
    }

    @Override
    protected void doSetNextReader(LeafReaderContext context) throws IOException {
      super.doSetNextReader(context);
      sizes = DocValues.getNumeric(context.reader(), sizeField);
    }

    @Override
    float score(int doc) throws IOException {
      float inter = scorer.score();
      float size = sizes.advanceExact(doc) ? (float) sizes.longValue() : 0f;
      return inter / (size + (-1f * inter + querySize));
    }
  }
}
