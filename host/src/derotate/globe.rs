//! The rotating planet as the camera sees it: an oblate spheroid in
//! orthographic projection, its pole at a position angle in the image.
//!
//! Conventions (shared with `testkit::rotating`, which renders the test
//! captures): image x right, y down; the pole's position angle `θ` is
//! measured from image up, counter-clockwise as displayed, so the pole
//! points along `p = (−sin θ, −cos θ)`; features on the near side move
//! along `e = (cos θ, −sin θ)` (reversed in a mirrored image). The rotation
//! is prograde: right-handed about the north pole.

/// The disc and orientation of a planet in one image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Globe {
    /// Equatorial radius (px).
    pub a: f64,
    /// Polar radius as projected (px).
    pub b: f64,
    /// Position angle of the north pole (degrees, from image up, counter-clockwise).
    pub pole_deg: f64,
    /// The image is mirrored (a star diagonal, a flip in the capture program).
    pub mirrored: bool,
    /// Sub-observer latitude (degrees; positive: the north pole tilted towards us).
    pub latitude_deg: f64,
}

/// A point of the disc after the planet turned: its offset from the disc
/// centre and how squarely it faces the camera (`mu`, the cosine of the
/// emission angle; ≤ 0 when it has turned out of view).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turned {
    pub offset: (f64, f64),
    pub mu: f64,
}

impl Globe {
    /// The direction features move in (`e`) and the pole's (`p`), as unit
    /// vectors in the image.
    pub fn axes(&self) -> ((f64, f64), (f64, f64)) {
        let (s, c) = self.pole_deg.to_radians().sin_cos();
        let p = (-s, -c);
        let e = if self.mirrored { (-c, s) } else { (c, -s) };
        (e, p)
    }

    /// The direction features on the near side move, as a position angle
    /// (degrees from image up, counter-clockwise, in `[0, 360)`).
    pub fn motion_deg(&self) -> f64 {
        let (e, _) = self.axes();
        angle_of(e)
    }

    /// Where the surface point seen at offset `q` from the disc centre is
    /// once the planet has turned by `alpha` radians (negative: where it
    /// was); `None` off the disc.
    pub fn turn(&self, q: (f64, f64), alpha: f64) -> Option<Turned> {
        let (e, p) = self.axes();
        let x = (q.0 * e.0 + q.1 * e.1) / self.a;
        let y = (q.0 * p.0 + q.1 * p.1) / self.b;
        let r2 = x * x + y * y;
        if r2 >= 1.0 {
            return None;
        }
        let z = (1.0 - r2).sqrt();
        // Into the body's frame (pole along +y), turn about it, and back.
        let (sb, cb) = self.latitude_deg.to_radians().sin_cos();
        let (yb, zb) = (y * cb + z * sb, -y * sb + z * cb);
        let (sa, ca) = alpha.sin_cos();
        let (x2, zb2) = (x * ca + zb * sa, -x * sa + zb * ca);
        let (y2, z2) = (yb * cb - zb2 * sb, yb * sb + zb2 * cb);
        let (u, v) = (x2 * self.a, y2 * self.b);
        Some(Turned {
            offset: (u * e.0 + v * p.0, u * e.1 + v * p.1),
            mu: z2,
        })
    }

    /// The derotation at offset `q`: the displacement `(dx, dy)` from `q`
    /// to where its surface point was `alpha` radians of rotation away, and
    /// the weight of that sample (1 where the point faced the camera, falling
    /// smoothly to 0 as it turned towards the limb and out of view). Off the
    /// disc: no displacement, full weight.
    pub fn derotation(&self, q: (f64, f64), alpha: f64) -> (f64, f64, f64) {
        match self.turn(q, alpha) {
            None => (0.0, 0.0, 1.0),
            Some(t) => (
                t.offset.0 - q.0,
                t.offset.1 - q.1,
                smoothstep(LIMB_FADE.0, LIMB_FADE.1, t.mu),
            ),
        }
    }
}

/// `mu` over which a sample's weight rises from 0 to 1: a point that has
/// turned this close to the limb is foreshortened and smeared by the
/// seeing into the sky, so it no longer describes the surface.
const LIMB_FADE: (f64, f64) = (0.02, 0.2);

fn smoothstep(lo: f64, hi: f64, x: f64) -> f64 {
    let t = ((x - lo) / (hi - lo)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The position angle of an image direction (degrees from up, counter-clockwise, in `[0, 360)`).
pub fn angle_of(v: (f64, f64)) -> f64 {
    (-v.0).atan2(-v.1).to_degrees().rem_euclid(360.0)
}

/// The smallest difference between two angles (degrees, in `[0, 180]`).
pub fn angle_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jupiter(pole_deg: f64, mirrored: bool) -> Globe {
        Globe {
            a: 100.0,
            b: 93.5,
            pole_deg,
            mirrored,
            latitude_deg: 0.0,
        }
    }

    #[test]
    fn the_pole_angle_is_counter_clockwise_from_up() {
        let up = jupiter(0.0, false).axes();
        assert!((up.1 .0).abs() < 1e-12 && (up.1 .1 + 1.0).abs() < 1e-12);
        // With north up, near-side features move to the right (west).
        assert!((up.0 .0 - 1.0).abs() < 1e-12);
        let left = jupiter(90.0, false).axes().1;
        assert!((left.0 + 1.0).abs() < 1e-12);
        assert!((angle_of(left) - 90.0).abs() < 1e-9);
        assert!((jupiter(0.0, false).motion_deg() - 270.0).abs() < 1e-9);
        assert!((jupiter(0.0, true).motion_deg() - 90.0).abs() < 1e-9);
    }

    #[test]
    fn the_centre_moves_along_e_by_a_sin_alpha() {
        for pole in [0.0, 37.0, 200.0] {
            for mirrored in [false, true] {
                let g = jupiter(pole, mirrored);
                let (e, _) = g.axes();
                let t = g.turn((0.0, 0.0), 0.05).unwrap();
                let s = 100.0 * 0.05f64.sin();
                assert!((t.offset.0 - s * e.0).abs() < 1e-9);
                assert!((t.offset.1 - s * e.1).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn turning_forth_and_back_returns_the_point() {
        let g = Globe {
            latitude_deg: 12.0,
            ..jupiter(63.0, false)
        };
        for q in [(10.0, -20.0), (-50.0, 30.0), (0.0, 80.0)] {
            let t = g.turn(q, 0.1).unwrap();
            let back = g.turn(t.offset, -0.1).unwrap();
            assert!((back.offset.0 - q.0).abs() < 1e-6, "{q:?} {back:?}");
            assert!((back.offset.1 - q.1).abs() < 1e-6);
        }
    }

    #[test]
    fn points_turning_out_of_view_lose_their_weight() {
        let g = jupiter(0.0, false);
        // Near the right (west) limb, turning forward carries the point behind.
        let (_, _, w) = g.derotation((99.0, 0.0), 0.2);
        assert_eq!(w, 0.0);
        let (_, _, w) = g.derotation((-99.0, 0.0), 0.2);
        assert!(w > 0.9);
        assert_eq!(g.derotation((150.0, 0.0), 0.2), (0.0, 0.0, 1.0));
        // Near the pole the surface hardly moves.
        let (dx, dy, _) = g.derotation((0.0, -93.0), 0.2);
        let (cx, _, _) = g.derotation((0.0, 0.0), 0.2);
        assert!(
            dx.abs() < 0.15 * cx && dy.abs() < 0.01 * cx,
            "{dx} {dy} {cx}"
        );
    }
}
