"use client";
// segmint in a Next.js client component: started in an effect (React's
// StrictMode runs it twice in development; the page keeps one client),
// then the same event as the other examples.
import { useEffect } from "react";
import { segmint } from "./segmint";

export default function Tracker() {
  useEffect(() => {
    const sm = segmint();
    window.sm = sm;
    sm.track("Packaging Test", { bundler: document.documentElement.dataset.bundler });
    sm.flush().then((result) => {
      document.body.dataset.flushed = JSON.stringify(result);
    });
  }, []);
  return <p>Tracking with segmint.</p>;
}
