// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Manager} from "./Manager.sol";
import {ECDSA} from "./ECDSA.sol";
import {IBondingManager, IMinter, IRoundsManager} from "./Interfaces.sol";

/// Probabilistic micropayments: senders fund a deposit and a reserve (the ETH is held by the
/// Minter), recipients redeem winning tickets, which credits fees to the recipient in the
/// BondingManager. Same check order, revert strings and events as the real TicketBroker
/// (MixinTicketBrokerCore, MixinReserve, MixinTicketProcessor, MixinWrappers).
contract TicketBroker is Manager {
    struct Ticket {
        address recipient;
        address sender;
        uint256 faceValue;
        uint256 winProb;
        uint256 senderNonce;
        bytes32 recipientRandHash;
        bytes auxData;
    }

    struct Sender {
        uint256 deposit;
        uint256 withdrawRound;
    }

    struct ReserveInfo {
        uint256 fundsRemaining;
        uint256 claimedInCurrentRound;
    }

    struct Reserve {
        uint256 funds;
        mapping(uint256 => uint256) claimedForRound;
        mapping(uint256 => mapping(address => uint256)) claimedByAddress;
    }

    event DepositFunded(address indexed sender, uint256 amount);
    event ReserveFunded(address indexed reserveHolder, uint256 amount);
    event ReserveClaimed(address indexed reserveHolder, address claimant, uint256 amount);
    event WinningTicketRedeemed(
        address indexed sender,
        address indexed recipient,
        uint256 faceValue,
        uint256 winProb,
        uint256 senderNonce,
        uint256 recipientRand,
        bytes auxData
    );
    event WinningTicketTransfer(address indexed sender, address indexed recipient, uint256 amount);
    event Unlock(address indexed sender, uint256 startRound, uint256 endRound);
    event UnlockCancelled(address indexed sender);
    event Withdrawal(address indexed sender, uint256 deposit, uint256 reserve);

    bytes32 public constant targetContractId = keccak256("TicketBrokerTarget");

    /// Rounds between `unlock()` and the earliest `withdraw()`.
    uint256 public unlockPeriod;
    /// Rounds a ticket stays redeemable after its creation round.
    uint256 public ticketValidityPeriod;
    mapping(bytes32 => bool) public usedTickets;

    mapping(address => Sender) internal senders;
    mapping(address => Reserve) internal reserves;

    modifier currentRoundInitialized() {
        require(roundsManager().currentRoundInitialized(), "current round is not initialized");
        _;
    }

    modifier checkDepositReserveETHValueSplit(uint256 _depositAmount, uint256 _reserveAmount) {
        require(
            msg.value == _depositAmount + _reserveAmount,
            "msg.value does not equal sum of deposit amount and reserve amount"
        );
        _;
    }

    modifier processDeposit(address _sender, uint256 _amount) {
        Sender storage sender = senders[_sender];
        sender.deposit += _amount;
        if (sender.withdrawRound > 0) {
            _cancelUnlock(sender, _sender);
        }
        _;
        emit DepositFunded(_sender, _amount);
    }

    modifier processReserve(address _sender, uint256 _amount) {
        Sender storage sender = senders[_sender];
        reserves[_sender].funds += _amount;
        emit ReserveFunded(_sender, _amount);
        if (sender.withdrawRound > 0) {
            _cancelUnlock(sender, _sender);
        }
        _;
    }

    constructor(address _controller) Manager(_controller) {}

    function setUnlockPeriod(uint256 _unlockPeriod) external onlyControllerOwner {
        unlockPeriod = _unlockPeriod;
        emit ParameterUpdate("unlockPeriod");
    }

    function setTicketValidityPeriod(uint256 _ticketValidityPeriod) external onlyControllerOwner {
        require(_ticketValidityPeriod > 0, "ticketValidityPeriod must be greater than 0");
        ticketValidityPeriod = _ticketValidityPeriod;
        emit ParameterUpdate("ticketValidityPeriod");
    }

    // Funding

    function fundDeposit() external payable whenSystemNotPaused processDeposit(msg.sender, msg.value) {
        processFunding(msg.value);
    }

    function fundReserve() external payable whenSystemNotPaused processReserve(msg.sender, msg.value) {
        processFunding(msg.value);
    }

    function fundDepositAndReserve(uint256 _depositAmount, uint256 _reserveAmount) external payable {
        fundDepositAndReserveFor(msg.sender, _depositAmount, _reserveAmount);
    }

    function fundDepositAndReserveFor(
        address _addr,
        uint256 _depositAmount,
        uint256 _reserveAmount
    )
        public
        payable
        whenSystemNotPaused
        checkDepositReserveETHValueSplit(_depositAmount, _reserveAmount)
        processDeposit(_addr, _depositAmount)
        processReserve(_addr, _reserveAmount)
    {
        processFunding(msg.value);
    }

    // Redemption

    function redeemWinningTicket(
        Ticket memory _ticket,
        bytes memory _sig,
        uint256 _recipientRand
    ) public whenSystemNotPaused currentRoundInitialized {
        bytes32 ticketHash = getTicketHash(_ticket);
        requireValidWinningTicket(_ticket, ticketHash, _sig, _recipientRand);

        Sender storage sender = senders[_ticket.sender];
        require(isLocked(sender), "sender is unlocked");
        require(
            sender.deposit > 0 || reserves[_ticket.sender].funds > 0,
            "sender deposit and reserve are zero"
        );

        usedTickets[ticketHash] = true;

        uint256 amountToTransfer;
        if (_ticket.faceValue > sender.deposit) {
            amountToTransfer =
                sender.deposit +
                claimFromReserve(_ticket.sender, _ticket.recipient, _ticket.faceValue - sender.deposit);
            sender.deposit = 0;
        } else {
            amountToTransfer = _ticket.faceValue;
            sender.deposit -= _ticket.faceValue;
        }

        if (amountToTransfer > 0) {
            (uint256 creationRound, ) = getCreationRoundAndBlockHash(_ticket.auxData);
            bondingManager().updateTranscoderWithFees(_ticket.recipient, amountToTransfer, creationRound);
            emit WinningTicketTransfer(_ticket.sender, _ticket.recipient, amountToTransfer);
        }

        emit WinningTicketRedeemed(
            _ticket.sender,
            _ticket.recipient,
            _ticket.faceValue,
            _ticket.winProb,
            _ticket.senderNonce,
            _recipientRand,
            _ticket.auxData
        );
    }

    /// Redeems each ticket in its own call; a ticket that fails is skipped silently.
    function batchRedeemWinningTickets(
        Ticket[] memory _tickets,
        bytes[] memory _sigs,
        uint256[] memory _recipientRands
    ) public whenSystemNotPaused currentRoundInitialized {
        for (uint256 i = 0; i < _tickets.length; i++) {
            // The outcome is deliberately ignored, as in the real contract.
            (bool success, ) = address(this).call(
                abi.encodeCall(this.redeemWinningTicket, (_tickets[i], _sigs[i], _recipientRands[i]))
            );
            success;
        }
    }

    // Unlock and withdrawal

    function unlock() public whenSystemNotPaused {
        Sender storage sender = senders[msg.sender];
        require(sender.deposit > 0 || reserves[msg.sender].funds > 0, "sender deposit and reserve are zero");
        require(sender.withdrawRound == 0, "unlock already initiated");

        uint256 round = roundsManager().currentRound();
        sender.withdrawRound = round + unlockPeriod;
        emit Unlock(msg.sender, round, sender.withdrawRound);
    }

    function cancelUnlock() public whenSystemNotPaused {
        _cancelUnlock(senders[msg.sender], msg.sender);
    }

    function withdraw() public whenSystemNotPaused {
        Sender storage sender = senders[msg.sender];
        uint256 deposit = sender.deposit;
        uint256 reserve = reserves[msg.sender].funds;

        require(deposit > 0 || reserve > 0, "sender deposit and reserve are zero");
        require(sender.withdrawRound > 0, "no unlock request in progress");
        require(!isLocked(sender), "account is locked");

        sender.deposit = 0;
        // The per-round claim records stay; reserve claims are refused from the withdraw round on
        // ("sender is unlocked"), so they cannot be reused against a new reserve.
        reserves[msg.sender].funds = 0;

        minter().trustedWithdrawETH(payable(msg.sender), deposit + reserve);
        emit Withdrawal(msg.sender, deposit, reserve);
    }

    // Views

    function isUnlockInProgress(address _sender) public view returns (bool) {
        return senders[_sender].withdrawRound > 0;
    }

    function getSenderInfo(address _sender) public view returns (Sender memory sender, ReserveInfo memory reserve) {
        sender = senders[_sender];
        reserve = getReserveInfo(_sender);
    }

    function getReserveInfo(address _reserveHolder) public view returns (ReserveInfo memory info) {
        Reserve storage reserve = reserves[_reserveHolder];
        info.fundsRemaining = reserve.funds;
        info.claimedInCurrentRound = reserve.claimedForRound[roundsManager().currentRound()];
    }

    /// What `_claimant` may still take from the reserve this round: the reserve at round start split
    /// evenly over the transcoder pool, less what it already took. Zero for non-active claimants.
    function claimableReserve(address _reserveHolder, address _claimant) public view returns (uint256) {
        Reserve storage reserve = reserves[_reserveHolder];
        uint256 round = roundsManager().currentRound();
        IBondingManager bm = bondingManager();
        if (!bm.isActiveTranscoder(_claimant)) {
            return 0;
        }
        uint256 poolSize = bm.getTranscoderPoolSize();
        if (poolSize == 0) {
            return 0;
        }
        uint256 totalClaimable = reserve.funds + reserve.claimedForRound[round];
        return totalClaimable / poolSize - reserve.claimedByAddress[round][_claimant];
    }

    function claimedReserve(address _reserveHolder, address _claimant) public view returns (uint256) {
        return reserves[_reserveHolder].claimedByAddress[roundsManager().currentRound()][_claimant];
    }

    /// keccak256(abi.encodePacked(recipient, sender, faceValue, winProb, senderNonce, recipientRandHash, auxData)).
    function getTicketHash(Ticket memory _ticket) public pure returns (bytes32) {
        return
            keccak256(
                abi.encodePacked(
                    _ticket.recipient,
                    _ticket.sender,
                    _ticket.faceValue,
                    _ticket.winProb,
                    _ticket.senderNonce,
                    _ticket.recipientRandHash,
                    _ticket.auxData
                )
            );
    }

    // Internals

    function requireValidWinningTicket(
        Ticket memory _ticket,
        bytes32 _ticketHash,
        bytes memory _sig,
        uint256 _recipientRand
    ) internal view {
        require(_ticket.recipient != address(0), "ticket recipient is null address");
        require(_ticket.sender != address(0), "ticket sender is null address");

        requireValidTicketAuxData(_ticket.auxData);

        require(
            keccak256(abi.encodePacked(_recipientRand)) == _ticket.recipientRandHash,
            "recipientRand does not match recipientRandHash"
        );
        require(!usedTickets[_ticketHash], "ticket is used");
        require(isValidTicketSig(_ticket.sender, _sig, _ticketHash), "invalid signature over ticket hash");
        require(
            uint256(keccak256(abi.encodePacked(_sig, _recipientRand))) < _ticket.winProb,
            "ticket did not win"
        );
    }

    function requireValidTicketAuxData(bytes memory _auxData) internal view {
        (uint256 creationRound, bytes32 creationRoundBlockHash) = getCreationRoundAndBlockHash(_auxData);
        IRoundsManager rm = roundsManager();
        bytes32 blockHash = rm.blockHashForRound(creationRound);
        require(blockHash != bytes32(0), "ticket creationRound does not have a block hash");
        require(creationRoundBlockHash == blockHash, "ticket creationRoundBlockHash invalid for creationRound");
        require(creationRound + ticketValidityPeriod > rm.currentRound(), "ticket is expired");
    }

    /// auxData = uint256 creationRound ‖ bytes32 creationRoundBlockHash.
    function getCreationRoundAndBlockHash(
        bytes memory _auxData
    ) internal pure returns (uint256 creationRound, bytes32 creationRoundBlockHash) {
        require(_auxData.length == 64, "invalid length for ticket auxData: must be 64 bytes");
        assembly {
            creationRound := mload(add(_auxData, 32))
            creationRoundBlockHash := mload(add(_auxData, 64))
        }
    }

    function isValidTicketSig(address _sender, bytes memory _sig, bytes32 _ticketHash) internal pure returns (bool) {
        require(_sig.length == 65, "INVALID_SIGNATURE_LENGTH");
        address signer = ECDSA.recover(ECDSA.toEthSignedMessageHash(_ticketHash), _sig);
        return signer != address(0) && _sender == signer;
    }

    /// A sender is locked (its tickets redeemable) until its withdraw round.
    function isLocked(Sender storage _sender) internal view returns (bool) {
        return _sender.withdrawRound == 0 || roundsManager().currentRound() < _sender.withdrawRound;
    }

    function claimFromReserve(address _reserveHolder, address _claimant, uint256 _amount) internal returns (uint256) {
        uint256 claimable = claimableReserve(_reserveHolder, _claimant);
        uint256 claimAmount = _amount > claimable ? claimable : _amount;
        if (claimAmount > 0) {
            uint256 round = roundsManager().currentRound();
            Reserve storage reserve = reserves[_reserveHolder];
            reserve.claimedForRound[round] += claimAmount;
            reserve.claimedByAddress[round][_claimant] += claimAmount;
            reserve.funds -= claimAmount;
            emit ReserveClaimed(_reserveHolder, _claimant, claimAmount);
        }
        return claimAmount;
    }

    function _cancelUnlock(Sender storage _sender, address _senderAddress) internal {
        require(_sender.withdrawRound > 0, "no unlock request in progress");
        _sender.withdrawRound = 0;
        emit UnlockCancelled(_senderAddress);
    }

    function processFunding(uint256 _amount) internal {
        minter().depositETH{value: _amount}();
    }

    function bondingManager() internal view returns (IBondingManager) {
        return IBondingManager(registered("BondingManager"));
    }

    function roundsManager() internal view returns (IRoundsManager) {
        return IRoundsManager(registered("RoundsManager"));
    }

    function minter() internal view returns (IMinter) {
        return IMinter(registered("Minter"));
    }
}
