package vqgram.lucene;

import java.io.IOException;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.Term;
import org.apache.lucene.index.TermState;
import org.apache.lucene.index.TermStates;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.similarities.Similarity.SimScorer;

/** One (possibly boosted) TermQuery clause with the scorer TermQuery's weight would give it. */
final class TermClause {
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
