// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Manager} from "./Manager.sol";
import {TranscoderPool} from "./TranscoderPool.sol";
import {ILivepeerToken, IMinter, IRoundsManager} from "./Interfaces.sol";

/// Bonding, the transcoder pool (the next round's active set), rewards and fees.
///
/// Same functions, events, revert strings and check order as the real BondingManager. The
/// earnings accounting is simplified (see README.md): everything a transcoder earns — the whole
/// reward mint and the whole face value of its winning tickets — accrues to the transcoder itself
/// (`cumulativeRewards` / `cumulativeFees`, moved into its bonded amount / fees when it claims,
/// which bond, unbond, rebond, withdrawFees and claimEarnings do first). Delegators other than
/// the transcoder itself can bond and unbond but earn nothing.
contract BondingManager is Manager {
    using TranscoderPool for TranscoderPool.Data;

    uint256 private constant MAX_FUTURE_ROUND = type(uint256).max;
    uint256 private constant PERC_DIVISOR = 1000000;
    uint256 private constant PRECISE_PERC_DIVISOR = 1e27;

    struct EarningsPool {
        uint256 totalStake;
        uint256 transcoderRewardCut;
        uint256 transcoderFeeShare;
        uint256 cumulativeRewardFactor;
        uint256 cumulativeFeeFactor;
    }

    struct Transcoder {
        uint256 lastRewardRound;
        uint256 rewardCut;
        uint256 feeShare;
        mapping(uint256 => EarningsPool) earningsPoolPerRound;
        uint256 lastActiveStakeUpdateRound;
        uint256 activationRound;
        uint256 deactivationRound;
        uint256 activeCumulativeRewards;
        uint256 cumulativeRewards;
        uint256 cumulativeFees;
        uint256 lastFeeRound;
    }

    struct UnbondingLock {
        uint256 amount;
        uint256 withdrawRound;
    }

    struct Delegator {
        uint256 bondedAmount;
        uint256 fees;
        address delegateAddress;
        uint256 delegatedAmount;
        uint256 startRound;
        uint256 lastClaimRound;
        uint256 nextUnbondingLockId;
        mapping(uint256 => UnbondingLock) unbondingLocks;
    }

    enum TranscoderStatus {
        NotRegistered,
        Registered
    }

    enum DelegatorStatus {
        Pending,
        Bonded,
        Unbonded
    }

    event TranscoderUpdate(address indexed transcoder, uint256 rewardCut, uint256 feeShare);
    event TranscoderActivated(address indexed transcoder, uint256 activationRound);
    event TranscoderDeactivated(address indexed transcoder, uint256 deactivationRound);
    event TranscoderSlashed(address indexed transcoder, address finder, uint256 penalty, uint256 finderReward);
    event Reward(address indexed transcoder, uint256 amount);
    event TreasuryReward(address indexed transcoder, address treasury, uint256 amount);
    event Bond(
        address indexed newDelegate,
        address indexed oldDelegate,
        address indexed delegator,
        uint256 additionalAmount,
        uint256 bondedAmount
    );
    event Unbond(
        address indexed delegate,
        address indexed delegator,
        uint256 unbondingLockId,
        uint256 amount,
        uint256 withdrawRound
    );
    event Rebond(address indexed delegate, address indexed delegator, uint256 unbondingLockId, uint256 amount);
    event TransferBond(
        address indexed oldDelegator,
        address indexed newDelegator,
        uint256 oldUnbondingLockId,
        uint256 newUnbondingLockId,
        uint256 amount
    );
    event WithdrawStake(address indexed delegator, uint256 unbondingLockId, uint256 amount, uint256 withdrawRound);
    event WithdrawFees(address indexed delegator, address recipient, uint256 amount);
    event EarningsClaimed(
        address indexed delegate,
        address indexed delegator,
        uint256 rewards,
        uint256 fees,
        uint256 startRound,
        uint256 endRound
    );

    bytes32 public constant targetContractId = keccak256("BondingManagerTarget");

    /// Rounds between unbonding and the earliest withdrawal.
    uint64 public unbondingPeriod;
    /// Sum of the active set's stake for the current round (snapshot taken at round initialization).
    uint256 public currentRoundTotalActiveStake;
    /// Sum of the pool's stake, i.e. of the next round's active set.
    uint256 public nextRoundTotalActiveStake;
    /// Share of each reward mint sent to the Treasury (1e27 = 100%).
    uint256 public treasuryRewardCutRate;
    uint256 public nextRoundTreasuryRewardCutRate;
    uint256 public treasuryBalanceCeiling;

    mapping(address => Delegator) private delegators;
    mapping(address => Transcoder) private transcoders;
    TranscoderPool.Data private transcoderPool;

    modifier onlyTicketBroker() {
        require(msg.sender == registered("TicketBroker"), "caller must be TicketBroker");
        _;
    }

    modifier onlyRoundsManager() {
        require(msg.sender == registered("RoundsManager"), "caller must be RoundsManager");
        _;
    }

    modifier onlyVerifier() {
        require(msg.sender == registered("Verifier"), "caller must be Verifier");
        _;
    }

    modifier currentRoundInitialized() {
        require(roundsManager().currentRoundInitialized(), "current round is not initialized");
        _;
    }

    modifier autoClaimEarnings(address _delegator) {
        claimEarningsFor(_delegator);
        _;
    }

    constructor(address _controller) Manager(_controller) {}

    // Parameters

    function setUnbondingPeriod(uint64 _unbondingPeriod) external onlyControllerOwner {
        unbondingPeriod = _unbondingPeriod;
        emit ParameterUpdate("unbondingPeriod");
    }

    function setNumActiveTranscoders(uint256 _numActiveTranscoders) external onlyControllerOwner {
        transcoderPool.setMaxSize(_numActiveTranscoders);
        emit ParameterUpdate("numActiveTranscoders");
    }

    /// Takes effect at the next round initialization.
    function setTreasuryRewardCutRate(uint256 _cutRate) external onlyControllerOwner {
        _setTreasuryRewardCutRate(_cutRate);
    }

    function setTreasuryBalanceCeiling(uint256 _ceiling) external onlyControllerOwner {
        treasuryBalanceCeiling = _ceiling;
        emit ParameterUpdate("treasuryBalanceCeiling");
    }

    // Transcoders

    function transcoder(uint256 _rewardCut, uint256 _feeShare) external {
        transcoderWithHint(_rewardCut, _feeShare, address(0), address(0));
    }

    function transcoderWithHint(
        uint256 _rewardCut,
        uint256 _feeShare,
        address,
        address
    ) public whenSystemNotPaused currentRoundInitialized {
        require(!roundsManager().currentRoundLocked(), "can't update transcoder params, current round is locked");
        require(_rewardCut <= PERC_DIVISOR, "invalid rewardCut percentage");
        require(_feeShare <= PERC_DIVISOR, "invalid feeShare percentage");
        require(isRegisteredTranscoder(msg.sender), "transcoder must be registered");

        Transcoder storage t = transcoders[msg.sender];
        uint256 round = currentRound();
        require(
            !isActiveTranscoder(msg.sender) || t.lastRewardRound == round,
            "caller can't be active or must have already called reward for the current round"
        );

        t.rewardCut = _rewardCut;
        t.feeShare = _feeShare;

        if (!transcoderPool.contains(msg.sender)) {
            tryToJoinActiveSet(msg.sender, delegators[msg.sender].delegatedAmount, round + 1);
        }

        emit TranscoderUpdate(msg.sender, _rewardCut, _feeShare);
    }

    function reward() external {
        rewardWithHint(address(0), address(0));
    }

    /// Mints `currentMintableTokens · stake / currentRoundTotalActiveStake` (Minter precision 1e9)
    /// and bonds it to the caller's stake, less the treasury cut.
    function rewardWithHint(address, address) public whenSystemNotPaused currentRoundInitialized {
        uint256 round = currentRound();
        require(isActiveTranscoder(msg.sender), "caller must be an active transcoder");
        require(
            transcoders[msg.sender].lastRewardRound != round,
            "caller has already called reward for the current round"
        );

        Transcoder storage t = transcoders[msg.sender];
        EarningsPool storage pool = t.earningsPoolPerRound[round];
        pool.transcoderRewardCut = t.rewardCut;
        pool.transcoderFeeShare = t.feeShare;
        // The stake the transcoder entered this round with, when it has not changed since.
        if (t.lastActiveStakeUpdateRound < round) {
            pool.totalStake = t.earningsPoolPerRound[t.lastActiveStakeUpdateRound].totalStake;
        }

        if (treasuryBalanceCeiling > 0 && nextRoundTreasuryRewardCutRate > 0) {
            if (livepeerToken().balanceOf(registered("Treasury")) >= treasuryBalanceCeiling) {
                _setTreasuryRewardCutRate(0);
            }
        }

        IMinter mtr = minter();
        uint256 totalRewardTokens = mtr.createReward(pool.totalStake, currentRoundTotalActiveStake);
        uint256 treasuryRewards = (totalRewardTokens * treasuryRewardCutRate) / PRECISE_PERC_DIVISOR;
        if (treasuryRewards > 0) {
            address treasury = registered("Treasury");
            mtr.trustedTransferTokens(treasury, treasuryRewards);
            emit TreasuryReward(msg.sender, treasury, treasuryRewards);
        }
        uint256 rewards = totalRewardTokens - treasuryRewards;

        t.activeCumulativeRewards = t.cumulativeRewards;
        t.cumulativeRewards += rewards;
        increaseTotalStake(msg.sender, rewards);
        t.lastRewardRound = round;

        emit Reward(msg.sender, rewards);
    }

    /// Credits a winning ticket's value to the recipient (current round, as with LIP-36).
    function updateTranscoderWithFees(
        address _transcoder,
        uint256 _fees,
        uint256 _round
    ) external whenSystemNotPaused onlyTicketBroker {
        _round; // the fees always count for the current round
        require(isRegisteredTranscoder(_transcoder), "transcoder must be registered");

        uint256 round = currentRound();
        Transcoder storage t = transcoders[_transcoder];
        if (round > t.lastRewardRound) {
            EarningsPool storage pool = t.earningsPoolPerRound[round];
            pool.transcoderRewardCut = t.rewardCut;
            pool.transcoderFeeShare = t.feeShare;
            if (t.lastActiveStakeUpdateRound < round) {
                pool.totalStake = t.earningsPoolPerRound[t.lastActiveStakeUpdateRound].totalStake;
            }
        }
        t.cumulativeFees += _fees;
        t.lastFeeRound = round;
    }

    /// Only the Verifier may slash; none is registered (as on the live network), so this reverts.
    function slashTranscoder(
        address _transcoder,
        address _finder,
        uint256 _slashAmount,
        uint256 _finderFee
    ) external whenSystemNotPaused onlyVerifier autoClaimEarnings(_transcoder) {
        Delegator storage del = delegators[_transcoder];
        if (del.bondedAmount == 0) {
            emit TranscoderSlashed(_transcoder, _finder, 0, 0);
            return;
        }
        uint256 penalty = (del.bondedAmount * _slashAmount) / PERC_DIVISOR;
        if (transcoderPool.contains(_transcoder)) {
            resignTranscoder(_transcoder);
        }
        del.bondedAmount -= penalty;
        if (delegatorStatus(_transcoder) == DelegatorStatus.Bonded) {
            delegators[del.delegateAddress].delegatedAmount -= penalty;
        }
        uint256 finderAmount = _finder != address(0) ? (penalty * _finderFee) / PERC_DIVISOR : 0;
        if (finderAmount > 0) {
            minter().trustedTransferTokens(_finder, finderAmount);
        }
        minter().trustedBurnTokens(penalty - finderAmount);
        emit TranscoderSlashed(_transcoder, _finder, penalty, finderAmount);
    }

    /// Called by the RoundsManager when a round is initialized: the pool becomes the active set.
    function setCurrentRoundTotalActiveStake() external onlyRoundsManager {
        currentRoundTotalActiveStake = nextRoundTotalActiveStake;
        if (nextRoundTreasuryRewardCutRate != treasuryRewardCutRate) {
            treasuryRewardCutRate = nextRoundTreasuryRewardCutRate;
            emit ParameterUpdate("treasuryRewardCutRate");
        }
    }

    // Delegators

    function bond(uint256 _amount, address _to) external {
        _bond(_amount, msg.sender, _to);
    }

    function bondWithHint(uint256 _amount, address _to, address, address, address, address) external {
        _bond(_amount, msg.sender, _to);
    }

    function bondForWithHint(uint256 _amount, address _owner, address _to, address, address, address, address) external {
        _bond(_amount, _owner, _to);
    }

    function unbond(uint256 _amount) external {
        _unbond(_amount);
    }

    function unbondWithHint(uint256 _amount, address, address) external {
        _unbond(_amount);
    }

    function rebond(uint256 _unbondingLockId) external {
        rebondWithHint(_unbondingLockId, address(0), address(0));
    }

    function rebondWithHint(
        uint256 _unbondingLockId,
        address,
        address
    ) public whenSystemNotPaused currentRoundInitialized autoClaimEarnings(msg.sender) {
        require(delegatorStatus(msg.sender) != DelegatorStatus.Unbonded, "caller must be bonded");
        processRebond(msg.sender, _unbondingLockId);
    }

    function rebondFromUnbonded(address _to, uint256 _unbondingLockId) external {
        rebondFromUnbondedWithHint(_to, _unbondingLockId, address(0), address(0));
    }

    function rebondFromUnbondedWithHint(
        address _to,
        uint256 _unbondingLockId,
        address,
        address
    ) public whenSystemNotPaused currentRoundInitialized autoClaimEarnings(msg.sender) {
        require(delegatorStatus(msg.sender) == DelegatorStatus.Unbonded, "caller must be unbonded");
        delegators[msg.sender].startRound = currentRound() + 1;
        delegators[msg.sender].delegateAddress = _to;
        processRebond(msg.sender, _unbondingLockId);
    }

    /// Gives `_amount` of the caller's bond to `_delegator` (unbond, hand the lock over, rebond).
    function transferBond(
        address _delegator,
        uint256 _amount,
        address,
        address,
        address,
        address
    ) external whenSystemNotPaused currentRoundInitialized {
        claimEarningsFor(msg.sender);
        Delegator storage oldDel = delegators[msg.sender];
        address oldDelDelegate = oldDel.delegateAddress;

        _unbond(_amount);

        uint256 oldLockId = oldDel.nextUnbondingLockId - 1;
        uint256 withdrawRound = oldDel.unbondingLocks[oldLockId].withdrawRound;
        delete oldDel.unbondingLocks[oldLockId];

        Delegator storage newDel = delegators[_delegator];
        uint256 newLockId = newDel.nextUnbondingLockId;
        newDel.unbondingLocks[newLockId] = UnbondingLock(_amount, withdrawRound);
        newDel.nextUnbondingLockId = newLockId + 1;
        emit TransferBond(msg.sender, _delegator, oldLockId, newLockId, _amount);

        claimEarningsFor(_delegator);
        if (newDel.delegateAddress == address(0) && newDel.bondedAmount == 0) {
            require(oldDelDelegate != _delegator, "INVALID_DELEGATOR");
            require(address(0) != _delegator, "INVALID_DELEGATOR");
            newDel.delegateAddress = oldDelDelegate;
        }
        if (delegatorStatus(_delegator) == DelegatorStatus.Unbonded) {
            newDel.startRound = currentRound() + 1;
        }
        processRebond(_delegator, newLockId);
    }

    function withdrawStake(uint256 _unbondingLockId) external whenSystemNotPaused currentRoundInitialized {
        Delegator storage del = delegators[msg.sender];
        UnbondingLock storage lock = del.unbondingLocks[_unbondingLockId];

        require(isValidUnbondingLock(msg.sender, _unbondingLockId), "invalid unbonding lock ID");
        require(lock.withdrawRound <= currentRound(), "withdraw round must be before or equal to the current round");

        uint256 amount = lock.amount;
        uint256 withdrawRound = lock.withdrawRound;
        delete del.unbondingLocks[_unbondingLockId];

        minter().trustedTransferTokens(msg.sender, amount);
        emit WithdrawStake(msg.sender, _unbondingLockId, amount, withdrawRound);
    }

    function withdrawFees(
        address payable _recipient,
        uint256 _amount
    ) external whenSystemNotPaused currentRoundInitialized autoClaimEarnings(msg.sender) {
        require(_recipient != address(0), "invalid recipient");
        uint256 fees = delegators[msg.sender].fees;
        require(fees >= _amount, "insufficient fees to withdraw");
        delegators[msg.sender].fees = fees - _amount;

        minter().trustedWithdrawETH(_recipient, _amount);
        emit WithdrawFees(msg.sender, _recipient, _amount);
    }

    function claimEarnings(uint256) external whenSystemNotPaused currentRoundInitialized {
        claimEarningsFor(msg.sender);
    }

    /// Voting checkpoints (BondingVotes) are not part of the devnet: a no-op.
    function checkpointBondingState(address) external {}

    // Views

    function pendingStake(address _delegator, uint256) public view returns (uint256) {
        Delegator storage del = delegators[_delegator];
        uint256 stake = del.bondedAmount;
        if (isSelfDelegated(_delegator)) {
            stake += transcoders[_delegator].cumulativeRewards;
        }
        return stake;
    }

    function pendingFees(address _delegator, uint256) public view returns (uint256) {
        Delegator storage del = delegators[_delegator];
        uint256 fees = del.fees;
        if (isSelfDelegated(_delegator)) {
            fees += transcoders[_delegator].cumulativeFees;
        }
        return fees;
    }

    function transcoderTotalStake(address _transcoder) public view returns (uint256) {
        return delegators[_transcoder].delegatedAmount;
    }

    function transcoderStatus(address _transcoder) public view returns (TranscoderStatus) {
        return isRegisteredTranscoder(_transcoder) ? TranscoderStatus.Registered : TranscoderStatus.NotRegistered;
    }

    function delegatorStatus(address _delegator) public view returns (DelegatorStatus) {
        Delegator storage del = delegators[_delegator];
        if (del.bondedAmount == 0) {
            return DelegatorStatus.Unbonded;
        } else if (del.startRound > currentRound()) {
            return DelegatorStatus.Pending;
        } else {
            return DelegatorStatus.Bonded;
        }
    }

    function getTranscoder(
        address _transcoder
    )
        public
        view
        returns (
            uint256 lastRewardRound,
            uint256 rewardCut,
            uint256 feeShare,
            uint256 lastActiveStakeUpdateRound,
            uint256 activationRound,
            uint256 deactivationRound,
            uint256 activeCumulativeRewards,
            uint256 cumulativeRewards,
            uint256 cumulativeFees,
            uint256 lastFeeRound
        )
    {
        Transcoder storage t = transcoders[_transcoder];
        lastRewardRound = t.lastRewardRound;
        rewardCut = t.rewardCut;
        feeShare = t.feeShare;
        lastActiveStakeUpdateRound = t.lastActiveStakeUpdateRound;
        activationRound = t.activationRound;
        deactivationRound = t.deactivationRound;
        activeCumulativeRewards = t.activeCumulativeRewards;
        cumulativeRewards = t.cumulativeRewards;
        cumulativeFees = t.cumulativeFees;
        lastFeeRound = t.lastFeeRound;
    }

    function getTranscoderEarningsPoolForRound(
        address _transcoder,
        uint256 _round
    )
        public
        view
        returns (
            uint256 totalStake,
            uint256 transcoderRewardCut,
            uint256 transcoderFeeShare,
            uint256 cumulativeRewardFactor,
            uint256 cumulativeFeeFactor
        )
    {
        EarningsPool storage pool = transcoders[_transcoder].earningsPoolPerRound[_round];
        return (
            pool.totalStake,
            pool.transcoderRewardCut,
            pool.transcoderFeeShare,
            pool.cumulativeRewardFactor,
            pool.cumulativeFeeFactor
        );
    }

    function getDelegator(
        address _delegator
    )
        public
        view
        returns (
            uint256 bondedAmount,
            uint256 fees,
            address delegateAddress,
            uint256 delegatedAmount,
            uint256 startRound,
            uint256 lastClaimRound,
            uint256 nextUnbondingLockId
        )
    {
        Delegator storage del = delegators[_delegator];
        return (
            del.bondedAmount,
            del.fees,
            del.delegateAddress,
            del.delegatedAmount,
            del.startRound,
            del.lastClaimRound,
            del.nextUnbondingLockId
        );
    }

    function getDelegatorUnbondingLock(
        address _delegator,
        uint256 _unbondingLockId
    ) public view returns (uint256 amount, uint256 withdrawRound) {
        UnbondingLock storage lock = delegators[_delegator].unbondingLocks[_unbondingLockId];
        return (lock.amount, lock.withdrawRound);
    }

    function getTranscoderPoolMaxSize() public view returns (uint256) {
        return transcoderPool.maxSize;
    }

    function getTranscoderPoolSize() public view returns (uint256) {
        return transcoderPool.size;
    }

    function getFirstTranscoderInPool() public view returns (address) {
        return transcoderPool.head;
    }

    function getNextTranscoderInPool(address _transcoder) public view returns (address) {
        return transcoderPool.getNext(_transcoder);
    }

    function getTotalBonded() public view returns (uint256) {
        return currentRoundTotalActiveStake;
    }

    function isActiveTranscoder(address _transcoder) public view returns (bool) {
        Transcoder storage t = transcoders[_transcoder];
        uint256 round = currentRound();
        return t.activationRound <= round && round < t.deactivationRound;
    }

    function isRegisteredTranscoder(address _transcoder) public view returns (bool) {
        Delegator storage d = delegators[_transcoder];
        return d.delegateAddress == _transcoder && d.bondedAmount > 0;
    }

    function isValidUnbondingLock(address _delegator, uint256 _unbondingLockId) public view returns (bool) {
        return delegators[_delegator].unbondingLocks[_unbondingLockId].withdrawRound > 0;
    }

    // Internals

    function _bond(uint256 _amount, address _owner, address _to) internal whenSystemNotPaused currentRoundInitialized {
        claimEarningsFor(_owner);
        Delegator storage del = delegators[_owner];
        uint256 round = currentRound();
        uint256 delegationAmount = _amount;
        address currentDelegate = del.delegateAddress;
        uint256 currentBondedAmount = del.bondedAmount;

        // A third party may add to someone's bond, not choose or change its delegate.
        if (msg.sender != _owner) {
            require(_owner != address(0), "INVALID_DELEGATOR");
            if (delegatorStatus(_owner) == DelegatorStatus.Unbonded) {
                require(_to != _owner, "INVALID_DELEGATE");
            } else {
                require(currentDelegate == _to, "INVALID_DELEGATE_CHANGE");
            }
        }

        if (delegatorStatus(_owner) == DelegatorStatus.Unbonded) {
            del.startRound = round + 1;
        } else if (currentBondedAmount > 0 && currentDelegate != _to) {
            require(!isRegisteredTranscoder(_owner), "registered transcoders can't delegate towards other addresses");
            del.startRound = round + 1;
            delegationAmount += currentBondedAmount;
            decreaseTotalStake(currentDelegate, currentBondedAmount);
        }

        require(delegationAmount > 0, "delegation amount must be greater than 0");
        del.delegateAddress = _to;
        del.bondedAmount = currentBondedAmount + _amount;

        increaseTotalStake(_to, delegationAmount);

        if (_amount > 0) {
            livepeerToken().transferFrom(msg.sender, address(minter()), _amount);
        }

        emit Bond(_to, currentDelegate, _owner, _amount, del.bondedAmount);
    }

    function _unbond(uint256 _amount) internal whenSystemNotPaused currentRoundInitialized {
        claimEarningsFor(msg.sender);
        require(delegatorStatus(msg.sender) == DelegatorStatus.Bonded, "caller must be bonded");

        Delegator storage del = delegators[msg.sender];
        require(_amount > 0, "unbond amount must be greater than 0");
        require(_amount <= del.bondedAmount, "amount is greater than bonded amount");

        address currentDelegate = del.delegateAddress;
        uint256 withdrawRound = currentRound() + unbondingPeriod;
        uint256 lockId = del.nextUnbondingLockId;

        del.unbondingLocks[lockId] = UnbondingLock(_amount, withdrawRound);
        del.nextUnbondingLockId = lockId + 1;
        del.bondedAmount -= _amount;

        if (del.bondedAmount == 0) {
            del.delegateAddress = address(0);
            del.startRound = 0;
            if (transcoderPool.contains(msg.sender)) {
                resignTranscoder(msg.sender);
            }
        }

        decreaseTotalStake(currentDelegate, _amount);

        emit Unbond(currentDelegate, msg.sender, lockId, _amount, withdrawRound);
    }

    function processRebond(address _delegator, uint256 _unbondingLockId) internal {
        Delegator storage del = delegators[_delegator];
        require(isValidUnbondingLock(_delegator, _unbondingLockId), "invalid unbonding lock ID");

        uint256 amount = del.unbondingLocks[_unbondingLockId].amount;
        del.bondedAmount += amount;
        delete del.unbondingLocks[_unbondingLockId];

        address delegate = del.delegateAddress;
        increaseTotalStake(delegate, amount);

        emit Rebond(delegate, _delegator, _unbondingLockId, amount);
    }

    /// Moves a self-delegated transcoder's accrued rewards and fees into its bonded amount and fees.
    function claimEarningsFor(address _delegator) internal {
        Delegator storage del = delegators[_delegator];
        uint256 round = currentRound();
        uint256 rewards;
        uint256 fees;
        if (isSelfDelegated(_delegator)) {
            Transcoder storage t = transcoders[_delegator];
            rewards = t.cumulativeRewards;
            fees = t.cumulativeFees;
            t.cumulativeRewards = 0;
            t.cumulativeFees = 0;
            del.bondedAmount += rewards;
            del.fees += fees;
        }
        if (del.lastClaimRound < round || rewards > 0 || fees > 0) {
            emit EarningsClaimed(del.delegateAddress, _delegator, rewards, fees, del.lastClaimRound + 1, round);
            del.lastClaimRound = round;
        }
    }

    function increaseTotalStake(address _delegate, uint256 _amount) internal {
        Transcoder storage t = transcoders[_delegate];
        uint256 currStake = delegators[_delegate].delegatedAmount;
        uint256 newStake = currStake + _amount;
        uint256 round = currentRound();

        bool activeNow = isActiveTranscoder(_delegate);
        bool inPool = transcoderPool.contains(_delegate);
        if (inPool) {
            transcoderPool.updateKey(_delegate, newStake);
            nextRoundTotalActiveStake += _amount;
        } else if (isRegisteredTranscoder(_delegate)) {
            tryToJoinActiveSet(_delegate, newStake, round + 1);
        }
        if (activeNow || inPool) {
            recordStakeUpdate(t, round, currStake, newStake);
        }

        delegators[_delegate].delegatedAmount = newStake;
    }

    function decreaseTotalStake(address _delegate, uint256 _amount) internal {
        Transcoder storage t = transcoders[_delegate];
        uint256 currStake = delegators[_delegate].delegatedAmount;
        uint256 newStake = currStake - _amount;

        bool activeNow = isActiveTranscoder(_delegate);
        bool inPool = transcoderPool.contains(_delegate);
        if (inPool) {
            transcoderPool.updateKey(_delegate, newStake);
            nextRoundTotalActiveStake -= _amount;
        }
        if (activeNow || inPool) {
            recordStakeUpdate(t, currentRound(), currStake, newStake);
        }

        delegators[_delegate].delegatedAmount = newStake;
    }

    /// Keeps the stake the transcoder entered this round with, and records the next round's.
    function recordStakeUpdate(Transcoder storage _t, uint256 _round, uint256 _currStake, uint256 _newStake) internal {
        if (_t.lastActiveStakeUpdateRound < _round) {
            _t.earningsPoolPerRound[_round].totalStake = _currStake;
        }
        _t.earningsPoolPerRound[_round + 1].totalStake = _newStake;
        _t.lastActiveStakeUpdateRound = _round + 1;
    }

    /// Adds the transcoder to the pool; when the pool is full it must have more stake than the last
    /// member, which is evicted (deactivated from `_activationRound`).
    function tryToJoinActiveSet(address _transcoder, uint256 _totalStake, uint256 _activationRound) internal {
        if (transcoderPool.maxSize == 0) {
            return;
        }
        uint256 pendingNextRoundTotalActiveStake = nextRoundTotalActiveStake;

        if (transcoderPool.isFull()) {
            address lastTranscoder = transcoderPool.tail;
            uint256 lastStake = delegators[lastTranscoder].delegatedAmount;
            if (_totalStake <= lastStake) {
                return;
            }
            transcoderPool.remove(lastTranscoder);
            transcoders[lastTranscoder].deactivationRound = _activationRound;
            pendingNextRoundTotalActiveStake -= lastStake;
            emit TranscoderDeactivated(lastTranscoder, _activationRound);
        }

        transcoderPool.insert(_transcoder, _totalStake);
        pendingNextRoundTotalActiveStake += _totalStake;
        Transcoder storage t = transcoders[_transcoder];
        t.lastActiveStakeUpdateRound = _activationRound;
        t.activationRound = _activationRound;
        t.deactivationRound = MAX_FUTURE_ROUND;
        t.earningsPoolPerRound[_activationRound].totalStake = _totalStake;
        nextRoundTotalActiveStake = pendingNextRoundTotalActiveStake;
        emit TranscoderActivated(_transcoder, _activationRound);
    }

    function resignTranscoder(address _transcoder) internal {
        transcoderPool.remove(_transcoder);
        nextRoundTotalActiveStake -= delegators[_transcoder].delegatedAmount;
        uint256 deactivationRound = currentRound() + 1;
        transcoders[_transcoder].deactivationRound = deactivationRound;
        emit TranscoderDeactivated(_transcoder, deactivationRound);
    }

    function _setTreasuryRewardCutRate(uint256 _cutRate) internal {
        require(_cutRate <= PRECISE_PERC_DIVISOR, "_cutRate is invalid precise percentage");
        nextRoundTreasuryRewardCutRate = _cutRate;
        emit ParameterUpdate("nextRoundTreasuryRewardCutRate");
    }

    function isSelfDelegated(address _delegator) internal view returns (bool) {
        return _delegator != address(0) && delegators[_delegator].delegateAddress == _delegator;
    }

    function currentRound() internal view returns (uint256) {
        return roundsManager().currentRound();
    }

    function roundsManager() internal view returns (IRoundsManager) {
        return IRoundsManager(registered("RoundsManager"));
    }

    function minter() internal view returns (IMinter) {
        return IMinter(registered("Minter"));
    }

    function livepeerToken() internal view returns (ILivepeerToken) {
        return ILivepeerToken(registered("LivepeerToken"));
    }
}
