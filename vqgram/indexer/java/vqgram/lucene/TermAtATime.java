package vqgram.lucene;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.Scorer;
import org.apache.lucene.search.Weight;
import org.apache.lucene.search.similarities.Similarity.SimScorer;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.FixedBitSet;

/**
 * The top k of a word disjunction scored term at a time in windows of documents, on a pool of
 * threads.
 *
 * <p>Image queries are hundreds of words of similar weight, and most documents match some of
 * them, so MaxScore and WAND can skip little: Lucene 9.9 then pays a heap of hundreds of
 * clause iterators per posting. Here each term's postings are read in turn into a window of
 * {@value #WINDOW} score accumulators (what Lucene's own BooleanScorer does for exhaustive
 * disjunctions), and only the window's matches meet the top-k threshold (TopScores).
 */
public final class TermAtATime {
  /** Documents scored together: their sums and norms stay in cache. */
  static final int WINDOW = 4096;

  private static final Bits NONE = new Bits.MatchNoBits(0);
  private static ExecutorService pool;

  private TermAtATime() {}

  /**
   * The top {@code k} of a disjunction of SHOULD term clauses (as {@link Queries#disjunction} builds,
   * over one field), and every document tied with the k-th.
   *
   * <p>Each posting scores as TermQuery's scorer scores it (the searcher's similarity, the term's
   * statistics, the document's norm, read once per window), summed in double and cast to float
   * as BooleanQuery does; only the order of the sum differs. {@code filter} (null: none)
   * restricts the matches without scoring, as a FILTER clause would; deleted documents never match.
   *
   * <p>The reader's documents are cut into {@code shares} ranges of about equal size (inside a
   * segment too: each range advances its own postings to its start; DocRange), scored side by
   * side (the first in the calling thread, the others on a pool of one daemon thread per further
   * processor), and their top k merged; a document's score does not depend on the cut.
   */
  public static Rankings top(IndexSearcher searcher, Query disjunction, Query filter, int k, int shares)
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
      return Rankings.EMPTY;
    }
    Weight passing = filter == null ? null
        : searcher.createWeight(searcher.rewrite(filter), ScoreMode.COMPLETE_NO_SCORES, 1f);
    List<List<DocRange>> parts = DocRange.split(searcher.getIndexReader().leaves(), Math.max(1, shares), WINDOW);
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
}
