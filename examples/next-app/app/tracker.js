"use client";
// segmint in a Next.js client component: load() in an effect (React's
// StrictMode runs it twice in development; the page keeps one client),
// then the same event as the other examples.
import { useEffect } from "react";
import { load } from "segmint";

export default function Tracker() {
  useEffect(() => {
    const sm = load({ endpoint: process.env.NEXT_PUBLIC_SEGMINT_ENDPOINT || "/", flushIntervalMs: 100 });
    window.sm = sm;
    sm.track("Packaging Test", { bundler: document.documentElement.dataset.bundler });
    sm.flush().then((result) => {
      document.body.dataset.flushed = JSON.stringify(result);
    });
  }, []);
  return <p>Tracking with segmint.</p>;
}
